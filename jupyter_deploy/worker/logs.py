"""The instance's own log: everything it writes, the cell's prints tagged with the request id.

`capture()` makes the instance own its log file. File descriptors 1 and 2 go into a pipe
that a thread copies into the file line by line, so what C libraries and subprocesses write
is kept too (tagged with the request running when it is read); `sys.stdout` and `sys.stderr`
become writers that tag each line written on the cell thread with the id of its request.
"""

from __future__ import annotations

import atexit
import io
import os
import sys
import threading

from ..runtimes.logfiles import REQUEST_ID, RotatingLog

_cell = threading.local()  # the request the calling thread runs, if any
_running: str | None = None  # the request being run on the cell thread (one at a time)


def begin_request(request_id: str | None) -> None:
    """Lines this thread writes from now on carry `request_id` (on the cell thread)."""
    global _running
    if request_id is not None and not REQUEST_ID.match(request_id):
        request_id = None
    _cell.request_id = _running = request_id


def end_request() -> None:
    """Write the cell's unfinished lines with its request id, then stop tagging."""
    global _running
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, LineWriter):
            stream.flush()
    _cell.request_id = _running = None


class LineWriter(io.TextIOBase):
    """`sys.stdout` / `sys.stderr` of an instance: whole lines into the log, each thread's
    partial line kept until its newline (or until its request ends)."""

    def __init__(self, log: RotatingLog, fd: int) -> None:
        self.log = log
        self.fd = fd
        self.partial: dict[int, str] = {}

    encoding = "utf-8"  # a class attribute: TextIOBase's own is None

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fd  # the pipe: what is written there reaches the log too

    def write(self, text: str) -> int:
        thread = threading.get_ident()
        pending = self.partial.pop(thread, "") + text
        if "\n" in pending:
            *lines, rest = pending.split("\n")
            request_id = getattr(_cell, "request_id", None)
            for line in lines:
                self.log.write(line, request_id)
            pending = rest
        if pending:
            self.partial[thread] = pending
        return len(text)

    def flush(self) -> None:
        """Write this thread's unfinished line, if any."""
        pending = self.partial.pop(threading.get_ident(), "")
        if pending:
            self.log.write(pending, getattr(_cell, "request_id", None))

    def close_all(self) -> None:
        for thread in list(self.partial):
            self.log.write(self.partial.pop(thread, ""))


def _copy(log: RotatingLog, read_fd: int) -> None:
    """Copy the pipe into the log, line by line, until every writer has closed it."""
    pending = b""
    while True:
        try:
            data = os.read(read_fd, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            log.write(line.decode("utf-8", "replace"), _running)
    if pending:
        log.write(pending.decode("utf-8", "replace"))
    os.close(read_fd)


def capture(path: str, max_bytes: int, files: int) -> RotatingLog:
    """Send fds 1 and 2, `sys.stdout` and `sys.stderr` into the rotating log at `path`."""
    log = RotatingLog(path, max_bytes, files)
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    copier = threading.Thread(target=_copy, args=(log, read_fd), name="log-copy", daemon=True)
    copier.start()
    sys.stdout, sys.stderr = LineWriter(log, 1), LineWriter(log, 2)

    def finish() -> None:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, LineWriter):
                stream.close_all()
        # fds 1 and 2 to the file itself: the pipe ends, the copier drains it and stops
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        copier.join(1.0)

    atexit.register(finish)
    return log
