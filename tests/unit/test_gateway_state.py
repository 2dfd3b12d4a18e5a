"""The routing state as the service sends it and a gateway worker applies it (issue 13):
applied whole, input checks rebuilt, board rows kept while their owners exist; and the
board the workers count each other's requests on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from jupyter_deploy.gateway import board
from jupyter_deploy.gateway.board import Board
from jupyter_deploy.gateway.routing import Routes
from jupyter_deploy.gateway.state import Applied, Rows, describe
from jupyter_deploy.models import InstanceStatus
from jupyter_deploy.types import InputCheck

META = {"c1": {"name": "adder", "version": 1, "inputs": [{"name": "a", "type": "float"}],
               "outputs": [{"name": "total", "type": "float"}]}}


def _service_routes() -> tuple[Routes, dict, dict]:
    routes = Routes()
    routes.add_node("adder", "hash")
    routes.add_backend("adder", "adder-1", "127.0.0.1", 9001, InputCheck([]))
    routes.set_alias("public", "", True, {"adder": 100}, None, {"header": "x-user"})
    nodes = {"adder": SimpleNamespace(from_image=False, checkpoint_id="c1",
                                      checkpoint="adder@1")}
    instances = {"adder": {"adder-1": SimpleNamespace(checkpoint_id="c1",
                                                      status=InstanceStatus.PREPARING)}}
    return routes, nodes, instances


def _state(routes: Routes, nodes: dict, instances: dict, **options) -> dict:
    return describe(routes, nodes, instances, META.__getitem__,
                    lambda name: [{"id": "c1", "version": 1}], **options)


def test_a_worker_applies_the_state_whole_and_checks_inputs_itself():
    async def run() -> None:
        routes, nodes, instances = _service_routes()
        worker = Applied(Routes())
        worker.apply(_state(routes, nodes, instances), 1)
        route = worker.routes.nodes["adder"]
        assert route.key_hash == "hash" and list(route.backends) == ["adder-1"]
        backend = route.backends["adder-1"]
        assert (backend.pool.host, backend.pool.port) == ("127.0.0.1", 9001)
        assert backend.check({"input": {"a": "x"}})  # rebuilt from the declared inputs
        alias = worker.routes.aliases["public"]
        assert alias.public and alias.weights == (("adder", 100),)
        assert alias.sticky == {"header": "x-user"}
        described = worker.describe("alias", "public")
        assert described is not None and described[0]["ref"] == "adder@1"

        # a second instance, the alias gone: the same backend object stays (its pool, its
        # count), the new one comes, the alias goes, in one call
        routes.add_backend("adder", "adder-2", "127.0.0.1", 9002, InputCheck([]))
        instances["adder"]["adder-2"] = SimpleNamespace(checkpoint_id="c1",
                                                        status=InstanceStatus.HEALTHY)
        routes.remove_alias("public")
        worker.apply(_state(routes, nodes, instances), 2)
        assert route.backends["adder-1"] is backend and "adder-2" in route.backends
        assert "public" not in worker.routes.aliases and worker.version == 2

        # the node gone
        routes.remove_node("adder")
        worker.apply(_state(routes, {}, {}), 3)
        assert worker.routes.nodes == {}

    asyncio.run(run())


def test_while_the_service_settles_the_worker_keeps_the_instances_it_serves():
    async def run() -> None:
        routes, nodes, instances = _service_routes()
        worker = Applied(Routes())
        worker.apply(_state(routes, nodes, instances), 1)
        routes.remove_backend("adder", "adder-1")  # a new service: not checked again yet
        worker.apply(_state(routes, nodes, instances, settling=True), 2)
        assert "adder-1" in worker.routes.nodes["adder"].backends
        worker.apply(_state(routes, nodes, instances, settling=False), 3)
        assert "adder-1" not in worker.routes.nodes["adder"].backends

    asyncio.run(run())


def test_while_the_service_settles_an_instance_it_stops_is_not_kept():
    """A rolling update just after a start: the old instance, out of the service's routes
    and being stopped, leaves the workers' routes too (they kept it, and its last requests
    failed when it stopped)."""
    async def run() -> None:
        routes, nodes, instances = _service_routes()
        worker = Applied(Routes())
        worker.apply(_state(routes, nodes, instances), 1)
        instances["adder"]["adder-new"] = SimpleNamespace(checkpoint_id="c1",
                                                          status=InstanceStatus.CREATED)
        instances["adder"]["adder-1"].status = InstanceStatus.DELETING
        routes.remove_backend("adder", "adder-1")  # draining: the workers must stop using it
        worker.apply(_state(routes, nodes, instances, settling=True), 2)
        assert "adder-1" not in worker.routes.nodes["adder"].backends

    asyncio.run(run())


def test_rows_are_kept_while_their_names_exist_and_not_reused_at_once():
    rows = Rows(4)
    first = dict(rows.assign(["a", "b"]))
    assert len(set(first.values())) == 2
    again = rows.assign(["a", "c"])
    assert again["a"] == first["a"] and again["c"] not in (first["a"], first["b"])
    full = rows.assign(["a", "c", "d", "e", "f"])
    assert sorted(full.values()).count(-1) == 1  # four rows: the fifth name has none


def test_the_board_sums_the_other_workers_columns(tmp_path: Path):
    path = tmp_path / "board"
    board.create(path)
    first, second = Board(path, 0, 2), Board(path, 1, 2)
    try:
        first.fly(7, 3)
        second.fly(7, 2)
        assert (first.flying_elsewhere(7), second.flying_elsewhere(7)) == (2, 3)
        second.queue(5, 4, 10.0)
        assert first.waiting_elsewhere(5) == 4 and first.oldest_elsewhere(5) == 10.0
        second.queue(5, 0, 0.0)
        assert first.oldest_elsewhere(5) == board.NOBODY
        Board(path, 1, 2).close()  # a worker started again in that column clears it
        assert first.flying_elsewhere(7) == 0
    finally:
        first.close()
        second.close()


def test_the_channel_socket_of_a_deep_state_folder_fits_a_unix_socket(tmp_path: Path):
    from jupyter_deploy.gateway.channel import SOCKET_PATH_MAX, socket_path

    shallow = socket_path(tmp_path)
    assert shallow.parent == tmp_path / "gateway"
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = socket_path(deep)
    assert len(str(path).encode()) < SOCKET_PATH_MAX and path == socket_path(deep)
    assert path.parent.stat().st_mode & 0o777 == 0o700
