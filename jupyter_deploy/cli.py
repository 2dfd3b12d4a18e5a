"""`jupyter deploy ...`: the entry point's public path (`jupyter_deploy.cli:main`)."""

import sys

from .client.cli import main, stop_service

__all__ = ["main", "stop_service"]

if __name__ == "__main__":
    sys.exit(main())
