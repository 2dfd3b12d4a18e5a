"""A node's queue and its stuck instances, as the gateway's routing keeps them (issue 11)."""

from __future__ import annotations

import asyncio

import pytest

from jupyter_deploy.gateway.routing import QUEUE_FACTOR, QueueFull, Routes
from jupyter_deploy.types import InputCheck


def _routes(instances: int = 1) -> Routes:
    routes = Routes()
    routes.add_node("n", "")
    for number in range(instances):
        routes.add_backend("n", f"i{number}", "127.0.0.1", 9, InputCheck([]))
    return routes


def test_the_default_bound_grows_with_instances_and_target_concurrency():
    async def bounds() -> list[int]:
        routes = _routes(2)
        route = routes.nodes["n"]
        found = [route.queue_limit]
        route.configure_admission(2.5, None)
        found.append(route.queue_limit)
        route.configure_admission(1.0, 0)
        found.append(route.queue_limit)
        return found

    assert asyncio.run(bounds()) == [QUEUE_FACTOR * 2, QUEUE_FACTOR * 3 * 2, 0]


def test_waiters_get_free_slots_first_come_first_served():
    async def order() -> list[int]:
        route = _routes().nodes["n"]
        backend = route.backends["i0"]
        backend.in_flight = 1  # busy
        served: list[int] = []
        loop = asyncio.get_running_loop()

        async def wait(number: int) -> None:
            await route.wait_turn(loop.time() + 5)
            served.append(number)

        tasks = [asyncio.create_task(wait(n)) for n in range(3)]
        await asyncio.sleep(0.01)
        assert len(route.queue) == 3 and route.in_flight == 4
        for _ in range(3):
            route.wake_waiters()  # nothing is free: nobody moves
            await asyncio.sleep(0)
            backend.in_flight = 0
            route.wake_waiters()
            await asyncio.sleep(0.01)
            backend.in_flight = 1
        await asyncio.gather(*tasks)
        return served

    assert asyncio.run(order()) == [0, 1, 2]


def test_a_waiter_past_its_deadline_leaves_the_queue():
    async def leave() -> int:
        route = _routes().nodes["n"]
        route.backends["i0"].in_flight = 1
        with pytest.raises(TimeoutError):
            await route.wait_turn(asyncio.get_running_loop().time() + 0.05)
        return len(route.queue)

    assert asyncio.run(leave()) == 0


def test_a_stuck_instance_is_never_picked_but_still_counts_as_one():
    async def pick() -> None:
        routes = _routes(2)
        told: list[tuple[str, str]] = []
        routes.on_stuck.append(lambda node, instance: told.append((node, instance)))
        route = routes.nodes["n"]
        stuck = route.backends["i0"]
        route.on_stuck(stuck)
        route.on_stuck(stuck)  # told once
        assert told == [("n", "i0")]
        assert {route.pick(set()).instance_id for _ in range(4)} == {"i1"}  # type: ignore[union-attr]
        assert route.pick({"i1"}) is None and route.has_instance({"i1"})
        route.set_stuck(stuck, False)
        assert route.pick({"i1"}) is stuck

    asyncio.run(pick())


def test_the_queue_hears_when_the_last_instance_goes():
    async def last() -> None:
        routes = _routes()
        route = routes.nodes["n"]
        route.backends["i0"].in_flight = 1
        waiter = asyncio.create_task(route.wait_turn(asyncio.get_running_loop().time() + 5))
        await asyncio.sleep(0.01)
        routes.remove_backend("n", "i0")
        await asyncio.wait_for(waiter, 1)

    asyncio.run(last())


def test_the_expected_wait_counts_the_queue_and_the_instances_in_balancing():
    async def waits() -> list[float]:
        routes = _routes(2)
        route = routes.nodes["n"]
        found = [route.expected_wait()]  # no answer yet: unknown
        route.served(0.2)
        route.served(0.2)
        found.append(route.expected_wait())
        route.set_stuck(route.backends["i0"], True)
        found.append(route.expected_wait())
        return found

    assert asyncio.run(waits()) == pytest.approx([0.0, 0.1, 0.2])


def test_the_first_answer_refuses_the_waiters_it_could_not_serve_in_time():
    async def shed() -> list[str]:
        route = _routes().nodes["n"]
        route.backends["i0"].in_flight = 1
        loop = asyncio.get_running_loop()
        outcomes: list[str] = []

        async def wait() -> None:
            try:
                await route.wait_turn(loop.time() + 1.0)
                outcomes.append("woken")
            except QueueFull:
                outcomes.append("refused")

        tasks = [asyncio.create_task(wait()) for _ in range(8)]
        await asyncio.sleep(0.01)
        route.served(0.2)  # 0.2 s each: only the first two fit in half of the second left
        await asyncio.sleep(0.01)
        route.backends["i0"].in_flight = 0
        for _ in range(2):  # the slot is free twice (each woken request took no slot here)
            route.wake_waiters()
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        return outcomes

    assert sorted(asyncio.run(shed())) == ["refused"] * 6 + ["woken"] * 2


def test_a_cheap_cell_gets_requests_pipelined_a_slow_one_only_its_slots():
    async def depths() -> list[int]:
        route = _routes().nodes["n"]
        found = [route.per_instance]  # no answer yet: its slots
        route.served(0.001)
        found.append(route.per_instance)  # 50 of 1 ms fit in 50 ms
        route.service_s = 0.0
        route.served(0.2)
        found.append(route.per_instance)
        route.service_s = 0.0
        route.served(0.00001)
        found.append(route.per_instance)  # bounded
        return found

    assert asyncio.run(depths()) == [1, 50, 1, 64]
