"""Checking a checkpoint folder against its signed manifest, before anything is unpickled.

The deploy service signs each checkpoint's manifest (`manifest.json`: the SHA-256 of
`state.pkl` and of `checkpoint.json`, the source, the declared inputs and outputs, the
environment) with its installation's Ed25519 key; the signature is `manifest.sig`. An
instance holds only the public key. It checks the signature over the manifest's exact
bytes, then the hash of every file it reads, through the same open file it then reads from.
Light on purpose: the worker imports it at every cold start.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO, Any

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = 1
REFUSED_EXIT = 4  # the worker's exit code when its checkpoint does not verify
CHUNK = 1 << 20


PREFIX = "checkpoint refused: "  # how the worker logs the reason before it exits


class Refused(Exception):
    """The checkpoint does not verify; the message says why."""


def refusal(log_tail: str) -> str:
    """Why the worker refused its checkpoint, from the end of its log."""
    for line in reversed(log_tail.splitlines()):
        if PREFIX in line:
            return line.split(PREFIX, 1)[1].strip()
    return "its checkpoint does not verify"


def digest(f: IO[bytes]) -> str:
    """SHA-256 of the rest of an open file, read in chunks (states weigh hundreds of MB)."""
    h = hashlib.sha256()
    while chunk := f.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def load_public_key(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key written as hex."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise Refused("the public key is not hex") from None
    if len(key) != 32:
        raise Refused("the public key is not a 32-byte Ed25519 key")
    return key


def manifest(folder: Path, public_key: bytes) -> dict[str, Any]:
    """The checkpoint's manifest once its signature verifies with `public_key`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = (folder / MANIFEST).read_bytes()
        signature = (folder / SIGNATURE).read_bytes()
    except FileNotFoundError:
        raise Refused("the checkpoint is not signed (no manifest or signature)") from None
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        raise Refused("the manifest's signature does not verify with this installation's "
                      "key") from None
    signed = json.loads(data)
    if not isinstance(signed, dict) or signed.get("format") != FORMAT:
        raise Refused(f"the manifest is not of format {FORMAT}")
    return signed


def verified_bytes(path: Path, expected: str) -> bytes:
    """The whole file, once its hash is the signed one."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise Refused(f"{path.name} was changed after the checkpoint was signed")
    return data


def open_verified(path: Path, expected: str) -> IO[bytes]:
    """The file opened and rewound once its hash is the signed one: what is then read is
    what was hashed, even if the path is replaced meanwhile."""
    f = open(path, "rb")  # noqa: SIM115 - the caller reads it, then closes it
    try:
        if digest(f) != expected:
            raise Refused(f"{path.name} does not match its signed hash")
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


def verify(folder: Path, public_key: bytes) -> dict[str, Any]:
    """Check the signature and both files' hashes; the metadata from `checkpoint.json`."""
    signed = manifest(folder, public_key)
    meta = json.loads(verified_bytes(folder / "checkpoint.json", signed["checkpoint_json"]))
    with open_verified(folder / "state.pkl", signed["state"]):
        pass
    return dict(meta)
