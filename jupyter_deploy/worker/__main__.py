"""`python -m jupyter_deploy.worker --checkpoint DIR --fd N`: run one checkpoint instance."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from .app import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_deploy.worker")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--fd", required=True, type=int, help="listening socket to serve on")
    parser.add_argument("--busy-limit", type=float, default=15.0,
                        help="seconds a cell may run before the instance reports not ready")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args.checkpoint, args.fd, args.busy_limit))


if __name__ == "__main__":
    main()
