"""/deploy/api/checkpoints/{ref}/files: what a checkpoint's stored folder holds, its size and
whether it is signed, for the console's checkpoint view (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...signing import is_signed
from .base import DeployHandler


def folder_listing(folder: Path) -> dict[str, Any]:
    """Each file of the folder (relative path, bytes), their total, and the signature's mark."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: str(p))
    listed = [{"path": str(p.relative_to(folder)), "bytes": p.stat().st_size} for p in files]
    return {"size_bytes": sum(f["bytes"] for f in listed), "signed": is_signed(folder),
            "files": listed}


class CheckpointFilesHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        """`NAME` (the latest version) or `NAME@VERSION`: its files, size and signature."""
        checkpoint = self.scope.checkpoint(ref)  # 404 for an unknown one
        folder = self.service.store.checkpoint_dir(checkpoint["id"])
        self.reply({"name": checkpoint["name"], "version": checkpoint["version"],
                    "id": checkpoint["id"], **folder_listing(folder)})
