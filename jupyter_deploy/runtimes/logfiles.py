"""Instance log files: written by the instance, rotated by size, read by the service.

A line is `2026-11-24T20:19:05.123Z [REQUEST_ID] text` while a request runs, and
`2026-11-24T20:19:05.123Z text` outside one. `NAME.log` is the current file, `NAME.log.1`
the one before it, and so on up to `files - 1`: the total stays under `files * max_bytes`.
Imports stay light: instances load this module at start-up.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

STAMP_LENGTH = 24  # len("2026-11-24T20:19:05.123Z")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")  # what the gateway accepts from callers


class RotatingLog:
    """Appends timestamped lines to a file; past `max_bytes` the file is rotated. The path
    `-` is the process's standard output as it was, never rotated (in a container, whose
    output the service copies into a rotating log of its own)."""

    def __init__(self, path: str, max_bytes: int, files: int) -> None:
        self.path = path
        self.max_bytes = max(1024, max_bytes) if path != "-" else float("inf")
        self.files = max(1, files)
        self.max_line = min(64 * 1024, max(1024, max_bytes) // 2)
        self.lock = threading.Lock()
        self._second = -1
        self._stamp = ""
        self.fd = os.dup(1) if path == "-" else self._open()
        self.size = 0 if path == "-" else os.fstat(self.fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _prefix(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def write(self, text: str, request_id: str | None = None, stamped: bool = False) -> None:
        """One line (without its newline); a line longer than the limit is cut. `stamped`:
        the line has its time (and request id) already, as an instance wrote it."""
        if len(text) > self.max_line:
            text = f"{text[:self.max_line]}... [cut {len(text) - self.max_line} characters]"
        with self.lock:
            if stamped:
                line = f"{text}\n"
            else:
                prefix = self._prefix(time.time())
                line = f"{prefix} [{request_id}] {text}\n" if request_id else f"{prefix} {text}\n"
            data = line.encode("utf-8", "replace")
            if self.size and self.size + len(data) > self.max_bytes:
                self._rotate()
            os.write(self.fd, data)
            self.size += len(data)

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.files == 1:
            os.truncate(self.path, 0)
        else:
            for number in range(self.files - 1, 1, -1):
                older = f"{self.path}.{number - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{number}")
            os.replace(self.path, f"{self.path}.1")
        self.fd = self._open()
        self.size = 0

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        os.close(self.fd)


def copy_stream(chunks: Callable[[], Iterable[bytes]], path: str, max_bytes: int, files: int,
                stamped: bool, name: str) -> None:
    """Copy an engine's output stream (what `chunks()` opens) into the rotating log at `path`
    line by line, on a thread of its own, until the stream ends or fails; a worker of a
    checkpoint writes its lines `stamped` (its time, the request id)."""
    def copy() -> None:
        log = RotatingLog(path, max_bytes, files)
        pending = b""
        try:
            for chunk in chunks():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    log.write(line.decode("utf-8", "replace"), stamped=stamped)
            if pending:
                log.write(pending.decode("utf-8", "replace"), stamped=stamped)
        except Exception:  # noqa: BLE001 - the source went away: nothing more to copy
            pass
        finally:
            log.close()
    threading.Thread(target=copy, name=name, daemon=True).start()


def log_files(path: str) -> list[str]:
    """The files of one log, oldest first."""
    rotated = []
    number = 1
    while os.path.exists(f"{path}.{number}"):
        rotated.append(f"{path}.{number}")
        number += 1
    return rotated[::-1] + ([path] if os.path.exists(path) else [])


def has_request_id(line: str, request_id: str) -> bool:
    return line.startswith(f"[{request_id}] ", STAMP_LENGTH + 1)


def _lines(path: str) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            yield from f
    except FileNotFoundError:  # rotated away meanwhile
        return


def tail(path: str, max_bytes: int, request_id: str | None = None) -> str:
    """The end of a log across its rotated files (at most `max_bytes`, whole lines when it
    is cut), or only the lines of one request."""
    if request_id is not None:
        kept: deque[str] = deque()
        size = 0
        for name in log_files(path):
            for line in _lines(name):
                if has_request_id(line, request_id):
                    kept.append(line)
                    size += len(line)
                    while size > max_bytes and kept:
                        size -= len(kept.popleft())
        return "".join(kept)
    parts: list[bytes] = []
    wanted = max_bytes
    for name in reversed(log_files(path)):
        if wanted <= 0:
            break
        try:
            with open(name, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - wanted))
                data = f.read(wanted)
        except FileNotFoundError:
            continue
        parts.insert(0, data)
        wanted -= len(data)
    data = b"".join(parts)
    if wanted <= 0 and b"\n" in data[:-1]:
        data = data[data.index(b"\n") + 1:]  # drop the cut first line
    return data.decode("utf-8", "replace")


class Follower:
    """Reads what is appended to a log, through rotations."""

    def __init__(self, path: str, from_start: bool = False) -> None:
        self.path = path
        self.file = None
        self.pending = b""
        try:
            self.file = open(path, "rb")  # noqa: SIM115 - kept open across reads
            if not from_start:
                self.file.seek(0, os.SEEK_END)
        except FileNotFoundError:
            pass

    def read(self) -> list[str]:
        """The complete lines written since the last call."""
        data = b""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if self.file is not None:
            data = self.file.read()  # the rest of the file we have, rotated or not
            if current is not None:
                mine = os.fstat(self.file.fileno())
                if mine.st_ino != current.st_ino:
                    data += self._rotated_since(mine.st_ino)
                if mine.st_ino != current.st_ino or current.st_size < self.file.tell():
                    self.file.close()
                    self.file = None
        if self.file is None and current is not None:
            try:
                self.file = open(self.path, "rb")  # noqa: SIM115
                data += self.file.read()
            except FileNotFoundError:
                pass
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        return [line.decode("utf-8", "replace") for line in lines]

    def _rotated_since(self, inode: int) -> bytes:
        """The rotated files newer than the one we read (several rotations between reads)."""
        newer = []
        rotated = [name for name in log_files(self.path) if name != self.path]
        for name in reversed(rotated):  # the newest first
            try:
                if os.stat(name).st_ino == inode:
                    break
            except FileNotFoundError:
                break
            newer.append(name)
        data = b""
        for name in reversed(newer):
            try:
                with open(name, "rb") as f:
                    data += f.read()
            except FileNotFoundError:
                pass
        return data

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
