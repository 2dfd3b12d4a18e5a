"""The HTTP/1.1 layer shared by the gateway, the worker, the health probes and replay:
framing.py (heads, chunked bodies), server.py (the server side), client.py (to instances)."""
