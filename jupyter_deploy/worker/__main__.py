"""`python -m jupyter_deploy.worker --checkpoint DIR --public-key HEX --fd N [--log-file PATH]`
(or `--port P [--host H]` and `--public-key-file PATH`, in a container): run one checkpoint
instance, once the checkpoint verifies with the public key."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from ..runtimes.identity import TOKEN_ENV
from .app import serve
from .logs import capture
from .verify import PREFIX, REFUSED_EXIT, Refused, load_public_key


def main() -> None:
    owner = os.getppid()  # first: a service killed while we start is seen gone at once
    token = os.environ.pop(TOKEN_ENV, "")  # proves who we are to the service that adopts us
    parser = argparse.ArgumentParser(prog="python -m jupyter_deploy.worker")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="listening socket to serve on")
    where.add_argument("--port", type=int, help="port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (--port)")
    parser.add_argument("--public-key", help="the installation's Ed25519 public key, hex")
    parser.add_argument("--public-key-file", type=Path,
                        help="a file holding it (an image's; --public-key wins over it)")
    parser.add_argument("--busy-limit", type=float, default=15.0,
                        help="seconds a cell may run before the instance reports not ready")
    parser.add_argument("--log-file", help="the instance's log (else stdout and stderr)")
    parser.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024,
                        help="size at which the log file is rotated")
    parser.add_argument("--log-files", type=int, default=3,
                        help="log files kept, the current one included")
    parser.add_argument("--token-file", type=Path,
                        help="a file holding the instance's token: requests without it are "
                        "refused (an instance listening beyond loopback)")
    parser.add_argument("--lease", type=Path,
                        help="the state folder's lease: stop when no service holds it")
    parser.add_argument("--lease-grace", type=float, default=30.0,
                        help="seconds without a service holding the lease before stopping")
    args = parser.parse_args()
    if not (args.public_key or args.public_key_file):
        parser.error("--public-key or --public-key-file is required: checkpoints must verify")
    if args.log_file:
        capture(args.log_file, args.log_max_bytes, args.log_files)
        log_format = "%(levelname)s %(message)s"  # the log adds the time
    else:
        log_format = "%(asctime)s %(levelname)s %(message)s"
    logging.basicConfig(level=logging.INFO, format=log_format)
    try:
        public_key = load_public_key(args.public_key or args.public_key_file.read_text())
        gated = args.token_file is not None
        if gated:  # listening beyond loopback: every request must carry the token
            token = args.token_file.read_text().strip()
    except (Refused, OSError) as exc:
        logging.getLogger("jupyter_deploy.worker").error("%s%s", PREFIX, exc)
        raise SystemExit(REFUSED_EXIT) from None
    fd = args.fd
    if fd is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(128)
        fd = sock.detach()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        code = runner.run(serve(args.checkpoint, fd, args.busy_limit, public_key, args.lease,
                         args.lease_grace, owner, token, gated))
    # the exit status leaves the event loop as a value: a SystemExit raised inside it could
    # be printed as a traceback after the one that explains the failure
    sys.exit(code)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (its transports cost less per request than
    asyncio's), else None: asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
