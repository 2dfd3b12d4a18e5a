"""The installation's signing key, and the signed manifests of checkpoints.

The private key (`signing.key`, PEM, mode 0600) never leaves the state folder; instances
and images get only the public key (`signing.pub`, hex). A checkpoint folder is signed
only when its files still hash to its content id, so what is signed is what was pinned.
See worker/verify.py for the instance's side.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .worker.verify import CHUNK, FORMAT, MANIFEST, SIGNATURE, Refused, digest

PRIVATE = "signing.key"
PUBLIC = "signing.pub"


class InstallationKey:
    """The Ed25519 key of one state folder: created on first use, then loaded."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public_bytes = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_hex(self) -> str:
        """The public key as instances receive it."""
        return self.public_bytes.hex()

    @classmethod
    def open(cls, state_dir: Path) -> InstallationKey:
        """The folder's key, made (0600, in a folder made 0700) when there is none yet."""
        os.chmod(state_dir, 0o700)  # the key is only as private as its folder
        path = state_dir / PRIVATE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            os.chmod(path, 0o600)
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key") from None
            key = cls(loaded)
        else:
            key = cls(Ed25519PrivateKey.generate())
            with os.fdopen(fd, "wb") as f:
                f.write(key.private.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()))
        key._write_public(state_dir / PUBLIC)
        return key

    def _write_public(self, path: Path) -> None:
        if path.exists() and path.read_text().strip() == self.public_hex:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.public_hex + "\n")

    def sign(self, folder: Path, content_id: str) -> None:
        """Sign the checkpoint in `folder` if its files hash to `content_id`."""
        data = manifest_bytes(folder, content_id)
        _write_private(folder / MANIFEST, data)
        # The signature last: a folder with a manifest but no signature never verifies.
        _write_private(folder / SIGNATURE, self.private.sign(data))


def is_signed(folder: Path) -> bool:
    """Whether the folder holds a signature (valid or not: instances check)."""
    return (folder / SIGNATURE).exists()


def content_id(spec: dict[str, Any], state_path: Path) -> str:
    """The content address as the service computed it at pin time: spec, then the state."""
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    with open(state_path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()[:16]


def manifest_bytes(folder: Path, expected_id: str) -> bytes:
    """The manifest of the checkpoint in `folder`, refused unless it is `expected_id`."""
    meta_bytes = (folder / "checkpoint.json").read_bytes()
    meta = json.loads(meta_bytes)
    spec = {key: meta.get(key) for key in ("source", "inputs", "outputs", "environment")}
    if meta.get("batch"):  # pinned with --batch (issue 18): covered only when set
        spec["batch"] = True
    if meta.get("project"):  # pinned in a project other than `default` (issue 19)
        spec["project"] = meta["project"]
    if meta.get("id") != expected_id or content_id(spec, folder / "state.pkl") != expected_id:
        raise Refused(f"its files do not hash to its content id {expected_id}")
    with open(folder / "state.pkl", "rb") as f:
        state = digest(f)
    signed = {"format": FORMAT, "id": expected_id, "name": meta.get("name"), "state": state,
              "checkpoint_json": hashlib.sha256(meta_bytes).hexdigest(), **spec}
    return json.dumps(signed, sort_keys=True, indent=1).encode()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
