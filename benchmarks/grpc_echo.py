"""grpcio alone: a grpc.aio server whose one method returns its request, on 127.0.0.1.

    .venv/bin/python benchmarks/grpc_echo.py   # prints its port, serves until killed

benchmarks/protocols.py runs it on the service's CPU for a reference row: the most a Python
grpc.aio server answers on this machine, with no gateway, no routing and no cell behind it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

METHOD = "/bench.Echo/Echo"


async def echo(request: bytes, context: Any) -> bytes:
    return request


class Echo(grpc.GenericRpcHandler):  # type: ignore[misc]
    def service(self, details: Any) -> grpc.RpcMethodHandler | None:
        return grpc.unary_unary_rpc_method_handler(echo) if details.method == METHOD else None


async def serve() -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Echo(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve())
