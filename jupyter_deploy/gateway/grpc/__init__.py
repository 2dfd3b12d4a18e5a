"""The gateway's gRPC port: the server and each node's typed service (server.py), the node's
descriptors and .proto (proto.py), protobuf <-> JSON (transcode.py), and the pass-through to
Docker-image nodes that speak gRPC (passthrough.py)."""
