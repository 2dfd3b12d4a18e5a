"""/deploy/api/nodes and /deploy/api/events"""

from __future__ import annotations

import re
import time

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...models import InvalidInput
from .base import DeployHandler
from .logs import log_query, stream_logs

WHOLE = re.compile(r"-?[0-9]{1,12}\Z")


def _int_argument(handler: DeployHandler, name: str, default: int) -> int:
    value = handler.get_argument(name, str(default))
    if not WHOLE.match(value):
        raise InvalidInput(f"{name} must be a whole number", field=name)
    return int(value)


class NodesHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"nodes": self.scope.nodes()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Create a node; the answer carries its key, which is not shown again."""
        node, key = await self.scope.create_node(self.body())
        self.reply({"node": node, "key": key}, status=201)


class NodeHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(self.scope.node(name))

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        """Change the instance range."""
        self.reply(self.scope.update_node(name, self.body()))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        """Delete a node; its instances drain first."""
        await self.scope.delete_node(name)
        self.set_status(204)
        self.finish()


class ExecuteHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Call the node for the signed-in user (what `%deploy call` uses)."""
        self.body()  # any bytes: JSON the instance can take, or 400 here
        response = await self.scope.execute(name, self.request.body)
        self.set_status(response.status)
        for header, value in (response.headers or {}).items():
            self.set_header(header, value)
        self.set_header("Content-Type", "application/json")
        self.finish(response.body)


class SuspendHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str, action: str) -> None:
        """`:suspend` stops every instance and keeps the node; `:resume` restores its minimum."""
        self.reply(self.scope.suspend_node(name, action == "suspend"))


class InstancesHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply({"instances": self.scope.node(name)["instances"]})


class LogsHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """`?instance=ID` for one instance, `?tail=BYTES` for how much of each log,
        `?request_id=ID` for one request's lines, `?follow=true` to stream new lines."""
        query, key = log_query(self), self.scope.key(name)
        if not query.pop("follow"):
            self.reply({"logs": await self.service.logs(key, **query)})
            return
        await stream_logs(self, self.service.follow_logs(key, **query))

    def on_connection_close(self) -> None:
        self.closed = True  # a follow ends at its next poll


class MetricsHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The node's instances' own metrics (telemetry), with node_id and instance_id."""
        text = await self.service.metrics(self.scope.key(name))
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(text)


class StatsHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The gateway's counters for the node now: requests, errors (5xx, gRPC failures),
        duration_sum (seconds), and the server's time, for the panel's sparklines."""
        key = self.scope.key(name)
        self.service.node(key)
        totals = self.service.gateway.metrics.totals(key)
        self.reply({"node": name, "time": time.time(), **totals})


class EventsHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Changes after `?since=SEQ`; `?wait=S` waits for the next one (long poll).
        `?kind=node|checkpoint|alias`, `?node=`, `?alias=` or `?checkpoint=NAME` filter."""
        since = _int_argument(self, "since", 0)
        wait = min(max(_int_argument(self, "wait", 0), 0), 60)
        named = {k: self.get_argument(k, None) for k in ("kind", "alias", "checkpoint")}
        events = await self.scope.events(since, self.get_argument("node", None), wait,
                                         **named)
        self.reply({"events": events})


class ServiceHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Where the gateway listens and where the state is kept."""
        self.reply({"gateway_url": self.service.gateway_url,
                    "gateway_grpc_address": self.service.gateway_grpc_address,
                    "state_dir": str(self.service.state_dir)})
