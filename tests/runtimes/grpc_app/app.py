"""A plain gRPC server for the pass-through tests: raw-bytes methods of every kind,
grpc.health.v1 (Sick turns it NOT_SERVING) and reflection (which lists echo.Echo).

echo.Echo/Unary      unary-unary: the request, the metadata and the deadline left, as JSON;
                     b"fail" ends with FAILED_PRECONDITION and trailing metadata
echo.Echo/Count      unary-stream: b"N" -> b"0", b"1", ... b"N-1"
echo.Echo/Sum        stream-unary: the sum of the numbers sent
echo.Echo/Chat       stream-stream: b"echo:" + each message, as it comes
echo.Echo/Big        unary: b"N" -> N bytes
echo.Echo/Sleep      unary: sleeps float(request) seconds
echo.Echo/Sick       unary: the server's health becomes NOT_SERVING
"""

import json
import os
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

LIMIT = 64 * 1024 * 1024  # more than the gateway allows, so that the gateway's limit shows
health_servicer = health.HealthServicer()


def unary(request, context):
    if request == b"fail":
        context.set_trailing_metadata((("x-app-reason", "asked to"),))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "told to fail")
    context.set_trailing_metadata((("x-app-trailer", "unary"),))
    metadata = {k: v if isinstance(v, str) else v.hex() for k, v in context.invocation_metadata()}
    return json.dumps({"request": request.decode(), "metadata": metadata,
                       "time_remaining": context.time_remaining(),
                       "host": os.environ.get("HOSTNAME", "")}).encode()


def count(request, context):
    for i in range(int(request)):
        yield str(i).encode()


def total(requests, context):
    return str(sum(int(r) for r in requests)).encode()


def chat(requests, context):
    for request in requests:
        yield b"echo:" + request


def big(request, context):
    return b"x" * int(request)


def sleep(request, context):
    time.sleep(float(request))
    return b"woke"


def sick(request, context):
    health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    return b"sick"


HANDLERS = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Count": grpc.unary_stream_rpc_method_handler(count),
    "Sum": grpc.stream_unary_rpc_method_handler(total),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
    "Big": grpc.unary_unary_rpc_method_handler(big),
    "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
    "Sick": grpc.unary_unary_rpc_method_handler(sick),
}

server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[
    ("grpc.max_receive_message_length", LIMIT), ("grpc.max_send_message_length", LIMIT)])
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", HANDLERS),))
health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
reflection.enable_server_reflection(("echo.Echo", reflection.SERVICE_NAME,
                                     health_pb2.DESCRIPTOR.services_by_name["Health"].full_name),
                                    server)
server.add_insecure_port(f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '50051')}")
server.start()
server.wait_for_termination()
