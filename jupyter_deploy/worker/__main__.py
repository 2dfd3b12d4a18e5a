"""`python -m jupyter_deploy.worker --checkpoint DIR --fd N [--log-file PATH]`: run one
checkpoint instance."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from .app import serve
from .logs import capture


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_deploy.worker")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--fd", required=True, type=int, help="listening socket to serve on")
    parser.add_argument("--busy-limit", type=float, default=15.0,
                        help="seconds a cell may run before the instance reports not ready")
    parser.add_argument("--log-file", help="the instance's log (else stdout and stderr)")
    parser.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024,
                        help="size at which the log file is rotated")
    parser.add_argument("--log-files", type=int, default=3,
                        help="log files kept, the current one included")
    args = parser.parse_args()
    if args.log_file:
        capture(args.log_file, args.log_max_bytes, args.log_files)
        log_format = "%(levelname)s %(message)s"  # the log adds the time
    else:
        log_format = "%(asctime)s %(levelname)s %(message)s"
    logging.basicConfig(level=logging.INFO, format=log_format)
    asyncio.run(serve(args.checkpoint, args.fd, args.busy_limit))


if __name__ == "__main__":
    main()
