"""jupyter_deploy: pin a notebook cell as a checkpoint and deploy it as a node.

Kept light: instances import this package at start-up.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`jupyter_deploy.File`: what a `file` input is in the cell, imported when asked for."""
    if name == "File":
        from .types.values import File

        return File
    raise AttributeError(f"module 'jupyter_deploy' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .control.extension import DeployApp

    return [{"module": "jupyter_deploy", "app": DeployApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (labextension/), for `jupyter labextension develop`."""
    return [{"src": "labextension", "dest": "jupyterlab-deploy"}]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext jupyter_deploy`: the `%deploy` magics."""
    from .kernel.magics import DeployMagics

    ipython.register_magics(DeployMagics)
