"""The client side: the control-API client, finding the service, the CLI verbs and rendering."""

from .api import ClientError, DeployClient

__all__ = ["ClientError", "DeployClient"]
