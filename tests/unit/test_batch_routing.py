"""What the gateway does for a batching node (issue 18): its instances are sent up to the
batch's size at once, however slow the cell, and each request carries the batch's field."""

from __future__ import annotations

import asyncio

from jupyter_deploy.gateway.routing import Routes
from jupyter_deploy.types import InputCheck
from jupyter_deploy.worker.batching import settings


def test_a_batching_node_s_instance_takes_a_whole_batch_at_once():
    async def depths() -> list[object]:
        routes = Routes()
        route = routes.add_node("n", "")
        routes.add_backend("n", "i0", "127.0.0.1", 9, InputCheck([]))
        found: list[object] = [route.per_instance]
        route.configure_batch({"max_size": 16, "max_wait_ms": 2.5})
        found += [route.per_instance, route.batch_head]
        route.served(0.2)  # a slow cell: still a whole batch
        found.append(route.per_instance)
        route.service_s = 0.0
        route.served(0.0001)  # a cheap one: pipelined past it
        found.append(route.per_instance)
        route.configure_batch(None)
        found += [route.batch_size, route.batch_head]
        return found

    assert asyncio.run(depths()) == [1, 16, b"x-batch: 16 2.5\r\n", 16, 64, 0, b""]


def test_the_instance_reads_the_batch_field_or_ignores_it():
    assert settings("16 2.5") == (16, 0.0025)
    assert settings("32 5") == (32, 0.005)
    for wrong in ("", "16", "0 5", "16 -1", "x 5", "16 5 1", "100000 5"):
        assert settings(wrong) is None
