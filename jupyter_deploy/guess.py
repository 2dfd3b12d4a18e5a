"""The public path the JupyterLab extension calls in the kernel (`jupyter_deploy.guess`)."""

from .kernel.guess import guess

__all__ = ["guess"]
