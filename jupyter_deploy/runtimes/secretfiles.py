"""Secrets as files in a container (`--secret-file K=V`): `/run/secrets/K`, mode 0400, owned
by the container's user. They are copied into the created container before it starts, so
they never appear in `docker inspect` (environment variables do) (issue 12).
"""

from __future__ import annotations

import io
import re
import tarfile
from typing import Any

FILE_PREFIX = "file:"  # their names among the node's stored secrets
SECRETS_DIR = "run/secrets"
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\Z")
MAX_FILE_BYTES = 64 * 1024


def files_of(secrets: dict[str, str]) -> dict[str, str]:
    """The secret files among a node's stored secrets, by file name."""
    return {k[len(FILE_PREFIX):]: v for k, v in secrets.items() if k.startswith(FILE_PREFIX)}


def archive(files: dict[str, str], uid: int, gid: int) -> bytes:
    """A tar of `/run/secrets` holding `files`, owned by uid:gid, each 0400."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        folder = tarfile.TarInfo(SECRETS_DIR)
        folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o500, uid, gid
        tar.addfile(folder)
        for name, value in sorted(files.items()):
            data = value.encode()
            info = tarfile.TarInfo(f"{SECRETS_DIR}/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), 0o400, uid, gid
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def owner(container: Any, user: str) -> tuple[int, int]:
    """The uid and gid the container runs as (`user` is `UID[:GID]` or names in the image)."""
    name, _, group = user.partition(":")
    uid = int(name) if name.isdigit() else _lookup(container, "/etc/passwd", name, 2)
    if group:
        return uid, int(group) if group.isdigit() else _lookup(container, "/etc/group", group, 2)
    if name.isdigit():
        return uid, uid
    return uid, _lookup(container, "/etc/passwd", name, 3)


def _lookup(container: Any, path: str, name: str, column: int) -> int:
    """Field `column` of `name`'s line in the image's `path` (a passwd or group file)."""
    chunks, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        text = member.read().decode() if member is not None else ""
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] == name and len(fields) > column and fields[column].isdigit():
            return int(fields[column])
    raise ValueError(f"user {name!r} is not in the image's {path}")


def run(client: Any, image: str, options: dict[str, Any], files: dict[str, str]) -> Any:
    """Create the container, copy the secret files in, start it; one that cannot start is
    removed, not left behind."""
    container = client.containers.create(image, **options)
    try:
        if files:
            uid, gid = owner(container, options.get("user") or "0")
            container.put_archive("/", archive(files, uid, gid))
        container.start()
    except Exception:
        container.remove(force=True)
        raise
    return container
