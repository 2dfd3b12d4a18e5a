"""A checkpoint as a Docker image: the base, a venv with the distributions the snapshot needs
(pinned to the kernel's versions), the signed snapshot (with the local code it ships, see
worker/snapshot.py) and the worker.

The image runs `python -m jupyter_deploy.worker` as a non-root user; it is tagged by
checkpoint and base, so a second node of the same checkpoint reuses it. It carries the
installation's public key (never the private one): the worker verifies the snapshot's
signature and hashes at every start, and a checkpoint that does not verify is not built.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import jupyter_deploy

from ..signing import PUBLIC
from ..worker.verify import Refused, load_public_key, verify

CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
REPOSITORY = "jupyter-deploy-checkpoint"
IMAGE_FORMAT = 2
USER = "10001:10001"  # no account needed: nothing in the image is owned by it
ROOT = "/opt/jupyter-deploy"
LEFT_OUT = ("__pycache__", "labextension", "*.pyc")  # what instances never read
# The distributions that ship this package are copied in, never installed (not on PyPI).
OWN_MODULES = ("jupyter_deploy",)

DOCKERFILE = """\
FROM {base}
COPY build/ {root}/build/
RUN python3 -c "import sys; v = sys.version_info[:2]; sys.exit(0 if v == {minor} else \\
'the base image has Python %d.%d; the checkpoint was pinned with Python {python}: use a base \\
image with the same minor version' % v)"
RUN python3 -m venv {root}/venv \\
 && PIP_CERT={root}/build/ca.crt SSL_CERT_FILE={root}/build/ca.crt \\
    {root}/venv/bin/pip install --no-cache-dir --disable-pip-version-check -q \\
    -r {root}/build/requirements.txt
COPY src/ {root}/src/
COPY checkpoint/ {root}/checkpoint/
COPY public.key {root}/public.key
ENV PATH={root}/venv/bin:/usr/local/bin:/usr/bin:/bin PYTHONPATH={root}/src \\
    PYTHONUNBUFFERED=1 HOME=/tmp
USER {user}
ENTRYPOINT ["python", "-m", "jupyter_deploy.worker", "--checkpoint", "{root}/checkpoint", \
            "--public-key-file", "{root}/public.key"]
"""


def image_tag(checkpoint_id: str, base_id: str) -> str:
    """The checkpoint's image on this base: the cache key. `-v2`: images that verify their
    snapshot; one built before (v1, unverified) is never reused."""
    return f"{REPOSITORY}:{checkpoint_id}-{base_id.removeprefix('sha256:')[:12]}-v{IMAGE_FORMAT}"


def ca_bundle() -> Path | None:
    """The host's CA bundle: pip inside the build trusts what the host trusts."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), os.environ.get("PIP_CERT"), *CA_BUNDLES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def requirements(meta: dict[str, Any]) -> list[str]:
    """`name==version` lines: what the snapshot needs, and what the worker imports."""
    pinned = {r["distribution"].lower(): f"{r['distribution']}=={r['version']}"
              for r in meta["environment"].get("requirements", [])}
    own = {d.lower() for m in OWN_MODULES
           for d in importlib.metadata.packages_distributions().get(m, [])}
    for dist in worker_distributions():
        pinned.setdefault(dist.lower(), f"{dist}=={importlib.metadata.version(dist)}")
    return sorted(line for name, line in pinned.items() if name not in own)


def worker_distributions() -> list[str]:
    """The installed distributions the worker's modules import (cloudpickle, and whatever
    else the worker comes to need), found by reading its imports."""
    package = Path(jupyter_deploy.__file__).parent
    files = [*package.glob("worker/*.py"), *package.glob("http/*.py"), *package.glob("types/*.py"),
             package / "models.py", package / "runtimes" / "logfiles.py"]
    modules: set[str] = {"cloudpickle"}  # the snapshot is loaded with it
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    distributions = importlib.metadata.packages_distributions()
    found = set()
    for module in modules - set(sys.stdlib_module_names) - set(OWN_MODULES):
        found.update(distributions.get(module, []))
    return sorted(found)


def public_key_of(checkpoint_dir: Path) -> bytes:
    """The public key of the state folder the checkpoint is stored in."""
    return load_public_key((checkpoint_dir.parent.parent / PUBLIC).read_text())


def write_context(folder: Path, checkpoint_dir: Path, meta: dict[str, Any], base: str,
                  public_key: bytes | None = None) -> None:
    """The build context of a checkpoint's image, in `folder` (empty or missing); refused
    unless the checkpoint verifies with `public_key` (default: its state folder's)."""
    key = public_key_of(checkpoint_dir) if public_key is None else public_key
    try:
        verify(checkpoint_dir, key)
    except Refused as exc:
        raise Refused(f"checkpoint {checkpoint_dir.name} refused: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "public.key").write_text(key.hex() + "\n")
    build = folder / "build"
    build.mkdir()
    bundle = ca_bundle()
    if bundle is not None:
        shutil.copyfile(bundle, build / "ca.crt")
    else:
        (build / "ca.crt").write_text("")
    (build / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements(meta)))
    shutil.copytree(checkpoint_dir, folder / "checkpoint")
    for path in (folder / "checkpoint").iterdir():  # private in the state folder; the
        path.chmod(0o644)  # image's unprivileged user must read them
    package = Path(jupyter_deploy.__file__).parent
    shutil.copytree(package, folder / "src" / "jupyter_deploy",
                    ignore=shutil.ignore_patterns(*LEFT_OUT))
    python = meta["environment"].get("python", "")
    minor = tuple(int(p) for p in python.split(".")[:2]) if python else sys.version_info[:2]
    (folder / "Dockerfile").write_text(DOCKERFILE.format(
        base=base, root=ROOT, minor=minor, python=python or "?", user=USER))


def progress_line(chunk: dict[str, Any]) -> tuple[str, str | None]:
    """(a line of build progress, an error message when the build failed)."""
    if "error" in chunk:
        return f"error: {chunk['error'].strip()}", chunk["error"].strip()
    if "stream" in chunk:
        return chunk["stream"].rstrip(), None
    if "status" in chunk:
        return " ".join(str(chunk[k]) for k in ("status", "id", "progress") if chunk.get(k)), None
    return "", None
