"""A checkpoint's `state.pkl`: the local code the cell reaches, then the pickled names.

When the cell reaches modules or packages that no distribution installs (a `helper.py` or a
package beside the notebook), their files come first, as one plain pickle
`(MARK, VERSION, {relative path: bytes})`; the cloudpickled state follows in the same file.
The instance writes the files to a folder of its own and puts it first on `sys.path`
before it unpickles the state, so the state's references to those modules, and relative
imports inside the packages, resolve as they did in the kernel. Without local code the file
is the cloudpickled state alone. Everything is in the one file the content address covers.
With a signed hash, the file is hashed through the descriptor it is then unpickled from.
"""

from __future__ import annotations

import atexit
import importlib
import pickle
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .verify import open_verified

MARK = "jupyter-deploy-code"
VERSION = 1


def pack(state: bytes, files: dict[str, bytes]) -> bytes:
    """The bytes of `state.pkl`: `files` (relative paths) ahead of the pickled state."""
    if not files:
        return state
    return pickle.dumps((MARK, VERSION, dict(sorted(files.items()))), protocol=4) + state


def _is_code(head: Any) -> bool:
    # The state itself is always a dict: a tuple in front can only be the code.
    return isinstance(head, tuple) and len(head) == 3 and head[0] == MARK


def _safe(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"the snapshot holds a file outside its folder: {name!r}")
    return path


class Snapshot:
    """Loads a checkpoint's state, its local code first; the code is written out once.
    `sha256`: the signed hash the file must have (None: unchecked, for tools and tests)."""

    def __init__(self, path: Path, sha256: str | None = None) -> None:
        self.path = path
        self.sha256 = sha256
        self.code_dir: Path | None = None

    def _open(self) -> IO[bytes]:
        if self.sha256 is None:
            return open(self.path, "rb")  # noqa: SIM115 - closed by load()
        return open_verified(self.path, self.sha256)

    def load(self) -> dict[str, Any]:
        """The pinned names, as the kernel had them (verified first, when signed)."""
        import cloudpickle

        with self._open() as f:
            head = cloudpickle.load(f)
            if not _is_code(head):
                return dict(head)
            if self.code_dir is None:
                self.code_dir = self._write(head[2])
            return dict(cloudpickle.load(f))

    def _write(self, files: dict[str, bytes]) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="jupyter-deploy-code-"))
        atexit.register(shutil.rmtree, folder, True)
        for name, content in files.items():
            target = folder.joinpath(*_safe(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        # First on the path: the instance runs the code that was pinned, not a namesake.
        sys.path.insert(0, str(folder))
        importlib.invalidate_caches()
        return folder
