"""The HTTP/1.1 layer shared by the gateway, the worker, the health probes and replay."""
