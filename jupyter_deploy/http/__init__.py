"""The HTTP/1.1 layer shared by the gateway, the worker, the health probes and replay, on llhttp:
framing.py (limits, RFC checks), messages.py, server.py (a connection), listener.py,
client.py (to instances)."""
