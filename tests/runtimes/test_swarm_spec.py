"""The swarm runtime's policies, without a Swarm: how a task's state reads as an instance's,
what is refused before anything is made, the service spec, the instance token (issue 14)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_deploy.client import ClientError
from jupyter_deploy.http.messages import Request, Response
from jupyter_deploy.models import InvalidInput, Node
from jupyter_deploy.runtimes.limits import Limits
from jupyter_deploy.runtimes.swarm_spec import gpus_of, latest, refuse, service_spec, task_view
from jupyter_deploy.service.validation.placement import check_placement, runtime_of
from jupyter_deploy.worker.token import TokenGate

from ..conftest import Service, checkpoint_body


def task(state: str, node: str = "n1", ports: list[tuple[int, int]] | None = None,
         **status: Any) -> dict[str, Any]:
    return {"ServiceID": "s", "NodeID": node, "CreatedAt": "2026-12-01T10:00:00Z",
            "DesiredState": "running",
            "Status": {"State": state, "Message": state, **status, "PortStatus": {"Ports": [
                {"TargetPort": t, "PublishedPort": p, "PublishMode": "host"}
                for t, p in ports or []]}}}


def test_a_task_that_waits_or_runs_is_alive_and_its_port_is_swarms() -> None:
    for state in ("pending", "assigned", "preparing", "starting"):
        assert task_view(task(state), {}, 8080).alive
    view = task_view(task("running", ports=[(8080, 30001), (9090, 30002)]), {}, 8080)
    assert view.alive and view.port == 30001 and view.port_of(9090) == 30002
    assert task_view(None, {}, 8080).alive  # created, no task yet


def test_an_ended_task_or_a_down_node_is_an_instance_gone_with_swarms_words() -> None:
    failed = task_view(task("failed", Err="task: non-zero exit (3)",
                            ContainerStatus={"ExitCode": 3}), {}, 8080)
    assert not failed.alive and failed.message == "task: non-zero exit (3)"
    assert failed.exit_code == 3
    lost = task_view(task("running", node="n2"), {"n2": "down"}, 8080)
    assert not lost.alive and lost.message == "its Swarm node is down"
    assert not task_view(task("shutdown"), {}, 8080).alive


def test_the_newest_task_of_each_service_counts() -> None:
    old, new = task("failed"), task("running")
    new["CreatedAt"] = "2026-12-01T11:00:00Z"
    assert latest([new, old])["s"] is new and latest([old, new])["s"] is new


def test_disk_limits_and_unadvertised_gpus_are_refused() -> None:
    node = Node(name="n", checkpoint_id="c", checkpoint="c@1", runtime="swarm")
    with pytest.raises(InvalidInput) as disk:
        refuse(node, Limits(disk_mb=100), 0)
    assert disk.value.field == "disk_mb"
    with pytest.raises(InvalidInput) as gpu:
        refuse(node, Limits(gpus=1), 0)
    assert gpu.value.field == "config"
    advertised = [{"Description": {"Resources": {"GenericResources": [
        {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}}]}}}]
    assert gpus_of(advertised) == 2
    refuse(node, Limits(gpus=1), gpus_of(advertised))


def test_an_instance_is_one_service_swarm_never_restarts() -> None:
    node = Node(name="n", checkpoint_id="c", checkpoint="c@1", runtime="swarm",
                placement=["node.labels.zone==b"])
    made = service_spec(node, "n-1", "jd-n-1", "r/i@sha256:0", {"a": "b"}, {"K": "V"}, [],
                        "10001:10001", Limits(cpus=1, memory_mb=512), [])
    template = made["TaskTemplate"]
    assert made["Mode"] == {"Replicated": {"Replicas": 1}}
    assert template["RestartPolicy"]["Condition"] == "none"
    assert template["ContainerSpec"]["Healthcheck"] == {"Test": ["NONE"]}
    assert template["Placement"]["Constraints"] == ["node.labels.zone==b"]
    assert template["Resources"]["Limits"] == {"NanoCPUs": 10**9, "MemoryBytes": 512 << 20}
    assert template["Resources"]["Reservations"] == template["Resources"]["Limits"]
    assert made["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 8080,
                                              "PublishMode": "host"}]  # no PublishedPort


def test_placement_and_the_default_runtime() -> None:
    assert check_placement([" node.labels.zone==b "], "swarm") == ["node.labels.zone==b"]
    for value, field in ((["zone is b"], "placement[0]"), ("node.role==worker", "placement")):
        with pytest.raises(InvalidInput) as refused:
            check_placement(value, "swarm")
        assert refused.value.field == field
    with pytest.raises(InvalidInput, match="needs the swarm runtime"):
        check_placement(["node.role==worker"], "docker")
    known = ("process", "docker", "swarm")
    assert runtime_of({}, "swarm", known) == "swarm"
    assert runtime_of({"image": "x"}, "process", known) == "docker"
    assert runtime_of({"image": "x"}, "swarm", known) == "swarm"
    assert runtime_of({"runtime": "process"}, "swarm", known) == "process"


class Echo:
    def check(self, request: Request) -> None:
        pass

    def handle(self, request: Request, context: None) -> Response:
        return Response(200, b"{}")


def request(path: str, method: str = "POST", **headers: str) -> Request:
    return Request(method, path, "1.1", headers, b"{}")


def test_the_token_gate_opens_only_for_the_token_and_health_checks() -> None:
    gate = TokenGate(Echo(), "secret-token")
    refused = gate.handle(request("/execute"), None)
    assert isinstance(refused, Response) and refused.status == 401
    assert json.loads(refused.body)["error"]["code"] == "unauthorized"
    assert gate.handle(request("/execute", **{"x-instance-token": "wrong"}), None).status == 401
    assert gate.handle(request("/execute", **{"x-instance-token": "secret-token"}),
                       None).status == 200
    assert gate.handle(request("/readyz", "GET"), None).status == 200
    assert gate.handle(request("/metrics", "GET"), None).status == 401


def test_a_service_without_a_swarm_refuses_swarm_nodes(service: Service) -> None:
    service.client.add_checkpoint(checkpoint_body("nosw", "total = x\n", "x:int", "total", x=1))
    for spec, field in (({"runtime": "swarm"}, "runtime"),
                        ({"placement": ["node.labels.zone==b"]}, "placement")):
        with pytest.raises(ClientError) as refused:
            service.client.create_node({"name": "nosw", "checkpoint": "nosw", **spec})
        assert refused.value.status == 422
        assert refused.value.body["error"]["field"] == field, refused.value.body
    assert "nosw" not in {n["name"] for n in service.client.nodes()}
