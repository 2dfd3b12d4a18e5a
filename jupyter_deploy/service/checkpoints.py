"""Checkpoints: pinned cells as kernels send them, stored content-addressed."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import json
from typing import Any

from ..models import InvalidInput
from ..signing import InstallationKey, is_signed
from ..store.projects import DEFAULT_PROJECT
from ..store.sqlite import Store
from ..types import InputCheck
from ..worker.verify import Refused
from .observe import EventLog
from .projects import node_key
from .validation.checkpoints import checkpoint_spec


class Checkpoints:
    """Adding, reading and deleting checkpoints; every change is an event. Each checkpoint
    folder is signed with the installation's key as it is stored."""

    def __init__(self, store: Store, events: EventLog) -> None:
        self.store = store
        self.events = events
        self.key = InstallationKey.open(store.root)

    async def add(self, body: Any, project: str = DEFAULT_PROJECT) -> dict[str, Any]:
        """Store a checkpoint sent by a kernel: its metadata and base64 pickled state."""
        spec, extra = checkpoint_spec(body)
        if project != DEFAULT_PROJECT:
            # in the content address too: the same cell pinned in two projects makes two
            # folders, so that instances of different projects share no files
            spec["project"], extra["name"] = project, node_key(project, extra["name"])
        # A model can weigh hundreds of MB: decode, hash and write off the event loop.
        meta, state = await asyncio.to_thread(self._write, spec, extra, body["data"])
        if not self.store.checkpoint_dir(meta["id"]).exists():  # deleted meanwhile
            await asyncio.to_thread(self.store.write_checkpoint, meta, state)
        before = self.store.checkpoints(meta["name"])
        added = self.store.add_checkpoint(meta)
        if not before or added["version"] > before[-1]["version"]:  # not the same again
            self.events.add("checkpoint", added["name"], "pinned",
                            f"checkpoint {ref(added)} pinned")
        return added

    def _write(self, spec: dict[str, Any], extra: dict[str, Any], data: str
               ) -> tuple[dict[str, Any], bytes]:
        try:
            state = base64.b64decode(data, validate=True)
        except binascii.Error:
            raise InvalidInput("data must be base64", field="data") from None
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode() + state).hexdigest()
        meta = {"id": digest[:16], "name": extra["name"], **spec, **extra}
        self.store.write_checkpoint(meta, state)
        folder = self.store.checkpoint_dir(meta["id"])
        if not is_signed(folder):
            try:
                self.key.sign(folder, meta["id"])
            except Refused as exc:  # the folder was there, and changed since it was written
                raise InvalidInput(f"the stored checkpoint {meta['id']} cannot be signed: "
                                   f"{exc}", field="data") from None
        return meta, state

    def sign_existing(self) -> None:
        """Sign the checkpoints stored before signing existed, each only if its files still
        hash to the content id recorded when it was pinned; the others are refused."""
        for checkpoint_id, versions in self._by_id().items():
            folder = self.store.checkpoint_dir(checkpoint_id)
            if is_signed(folder):
                continue
            try:
                self.key.sign(folder, checkpoint_id)
            except (Refused, OSError, ValueError, KeyError) as exc:
                for item in versions:
                    self.events.add("checkpoint", item["name"], "refused",
                                    f"checkpoint {ref(item)} refused: it was stored before "
                                    f"checkpoints were signed and {exc}; no instance will "
                                    "start from it (pin it again)")
            else:
                for item in versions:
                    self.events.add("checkpoint", item["name"], "signed",
                                    f"checkpoint {ref(item)} signed: its files match the "
                                    "content hash recorded when it was pinned")

    def _by_id(self) -> dict[str, list[dict[str, Any]]]:
        by_id: dict[str, list[dict[str, Any]]] = {}
        for item in self.store.checkpoints():
            by_id.setdefault(item["id"], []).append(item)
        return by_id

    def all(self) -> list[dict[str, Any]]:
        """Every version of every checkpoint."""
        return self.store.checkpoints()

    def get(self, reference: str) -> dict[str, Any]:
        """`NAME` (the latest version) or `NAME@VERSION`."""
        return self.store.checkpoint(reference)

    def delete(self, reference: str) -> list[dict[str, Any]]:
        """Delete one version or all of them; refused while a node uses one."""
        deleted = self.store.delete_checkpoint(reference)
        for item in deleted:
            self.events.add("checkpoint", item["name"], "deleted",
                            f"checkpoint {ref(item)} deleted")
        return deleted

    @functools.lru_cache(maxsize=256)  # noqa: B019 - checkpoints are immutable
    def meta(self, checkpoint_id: str) -> dict[str, Any]:
        """A stored checkpoint's metadata, by content id."""
        path = self.store.checkpoint_dir(checkpoint_id) / "checkpoint.json"
        return json.loads(path.read_text())

    @functools.lru_cache(maxsize=256)  # noqa: B019 - checkpoints are immutable
    def input_check(self, checkpoint_id: str) -> InputCheck:
        """The check of a checkpoint's declared inputs."""
        return InputCheck(self.meta(checkpoint_id)["inputs"])


def ref(checkpoint: dict[str, Any]) -> str:
    """The checkpoint as the user names it: NAME@VERSION."""
    return f"{checkpoint['name']}@{checkpoint['version']}"
