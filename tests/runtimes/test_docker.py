"""The docker runtime against a real engine: checkpoint images, Docker-image nodes, limits,
adoption on restart. Skipped, with the reason, only where no engine can be started."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jupyter_deploy.client import ClientError

from ..conftest import Service, checkpoint_body, wait_for

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "docker_app"
BASE = "jupyter-deploy-base:bookworm"
FAST_HEALTH = {"interval_s": 0.2, "timeout_s": 1.0, "fail_threshold": 2, "pass_threshold": 1,
               "replace_after_s": 0.5}


def _engine() -> Any:
    """A client of a running engine with the local base image; the reason when there is none."""
    try:
        import docker
    except ImportError as exc:
        return f"the docker package is not installed: {exc}"
    for script in ("docker-engine.sh", "base-image.sh"):
        run = subprocess.run([str(ROOT / "scripts" / script)], capture_output=True, text=True)
        if run.returncode != 0:
            return f"scripts/{script} could not provide an engine: {run.stderr.strip()[-500:]}"
    return docker.from_env()


@pytest.fixture(scope="module")
def engine() -> Any:
    client = _engine()
    if isinstance(client, str):
        pytest.skip(f"no Docker engine: {client}")
    return client


@pytest.fixture(scope="module")
def app_image(engine: Any) -> Any:
    """The test's own image: a plain HTTP server FROM the local base image."""
    image, _ = engine.images.build(path=str(APP), buildargs={"BASE": BASE}, rm=True,
                                   tag="jupyter-deploy-test-app:latest")
    yield image
    engine.images.remove(image.id, force=True)


def containers(engine: Any, node: str) -> list[Any]:
    return engine.containers.list(all=True, filters={"label": f"jupyter-deploy.node={node}"})


def gateway(url: str, path: str, key: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url + path, data=body, method=method, headers={
        "Authorization": f"Bearer {key}", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def image_node(service: Service, name: str, **spec: Any) -> tuple[dict[str, Any], str]:
    body = {"name": name, "image": "jupyter-deploy-test-app:latest", "port": 8080,
            "health": {"path": "/healthz", **FAST_HEALTH}, **spec}
    created = service.client.create_node(body)
    wait_for(lambda: service.client.node(name)["status"] == "Healthy", timeout=60,
             message=f"node {name} to be Healthy")
    return service.client.node(name), created["key"]


def test_checkpoint_node_answers_as_on_the_process_runtime(service, engine):
    source = "print('adding', a, b)\ntotal = (a + b) * scale"
    body = checkpoint_body("dockersum", source, "a:float,b:float", "total",
                           state={"scale": 2.5}, a=1.0, b=2.0)
    process, process_key = service.create_node("sum-process", body)
    try:
        # As a user runs it: the image build streams to the command's output.
        cli = subprocess.run(
            [sys.executable, "-m", "jupyter_deploy.cli", "node", "create", "sum-docker",
             "--checkpoint", "dockersum", "--runtime", "docker", "--timeout", "170"],
            env=service.kernel_env, cwd=service.root, capture_output=True, text=True,
            timeout=175)
        assert cli.returncode == 0, cli.stderr
        assert "building image jupyter-deploy-checkpoint:" in cli.stdout
        assert "Step 1/" in cli.stdout and "Successfully built" in cli.stdout
        assert "Node sum-docker is Healthy (checkpoint dockersum@1)" in cli.stdout
        docker_key = cli.stdout.split("key:")[1].split()[0]
        call = json.dumps({"input": {"a": 3, "b": 4.5}}).encode()
        answers = [gateway(service.gateway_url, f"/v1/nodes/{n}:execute", k, "POST", call,
                           {"Content-Type": "application/json"})
                   for n, k in (("sum-process", process_key), ("sum-docker", docker_key))]
        assert answers[0][0] == answers[1][0] == 200
        assert json.loads(answers[0][2]) == json.loads(answers[1][2]) == {"output": {"total": 18.75}}
        # the cell's prints reach the instance's log, tagged with the request's id
        request_id = answers[1][1]["x-request-id"]

        def tagged() -> str:
            logs = service.client.request("GET", "/nodes/sum-docker/logs", request_id=request_id)
            return "".join(item["log"] for item in logs["logs"])
        wait_for(lambda: f"[{request_id}] adding 3.0 4.5" in tagged(), timeout=10,
                 message="the print of the call in the docker instance's log")
        bad = json.dumps({"input": {"a": "x", "b": 1}}).encode()
        refused = [gateway(service.gateway_url, f"/v1/nodes/{n}:execute", k, "POST", bad)
                   for n, k in (("sum-process", process_key), ("sum-docker", docker_key))]
        assert refused[0][0] == refused[1][0] == 422 and refused[0][2] == refused[1][2]
        events = [e["message"] for e in service.client.events(node="sum-docker")]
        assert any(m.startswith("building image") for m in events)  # build progress is told
        assert any("Step" in m for m in events)
        (running,) = containers(engine, "sum-docker")
        assert running.attrs["Config"]["User"] == "10001:10001"  # not root
        assert running.attrs["HostConfig"]["NetworkMode"] == "host"
        # A second node of the same checkpoint reuses the image.
        service.client.create_node({"name": "sum-docker2", "checkpoint": "dockersum",
                                    "runtime": "docker", "min": 1})
        wait_for(lambda: service.client.node("sum-docker2")["status"] == "Healthy", timeout=60,
                 message="the second docker node to be Healthy")
        events = [e["message"] for e in service.client.events(node="sum-docker2")]
        assert any(m.endswith("(cached)") for m in events)
        assert not any(m.startswith("building image") for m in events)
    finally:
        images = {c.image.id for n in ("sum-docker", "sum-docker2") for c in containers(engine, n)}
        for name in ("sum-process", "sum-docker", "sum-docker2"):
            if any(n["name"] == name for n in service.client.nodes()):
                service.client.delete_node(name)
        for image in images:
            engine.images.remove(image, force=True)
    assert not containers(engine, "sum-docker")


def gateway_metrics(service) -> str:
    with urllib.request.urlopen(service.gateway_url + "/metrics", timeout=30) as response:
        return response.read().decode()


def test_image_node_serves_through_the_gateway(service, engine, app_image):
    node, key = image_node(service, "echo", env={"GREETING": "hello"},
                           secrets={"APP_SECRET": "s3cret"},
                           telemetry={"path": "/metrics"}, min=2)
    try:
        assert node["endpoint"].endswith("/v1/nodes/echo/")
        assert node["secrets"] == ["APP_SECRET"] and "s3cret" not in json.dumps(node)
        status, headers, body = gateway(service.gateway_url, "/items/7?full=1", key, "PUT",
                                        b"payload", {"x-node-id": "echo", "x-test": "yes"})
        assert status == 200, body
        echoed = json.loads(body)
        assert echoed["method"] == "PUT" and echoed["path"] == "/items/7?full=1"
        assert echoed["body"] == "payload" and echoed["x_test"] == "yes"
        assert echoed["authorization"] is None  # the node key stays at the gateway
        assert echoed["secret"] == "s3cret" and echoed["greeting"] == "hello"
        assert echoed["user"] != 0
        assert headers["Content-Type"] == "application/json"
        status, _, body = gateway(service.gateway_url, "/v1/nodes/echo/search?q=a", key)
        assert status == 200 and json.loads(body)["path"] == "/search?q=a"
        assert gateway(service.gateway_url, "/", "wrong", headers={"x-node-id": "echo"})[0] == 403
        # an image has no typed gRPC service of ours
        assert gateway(service.gateway_url, "/v1/nodes/echo.proto", key)[0] == 404
        # Each instance's own metrics, labelled with node_id and instance_id.
        instances = {i["id"]: i for i in service.client.node("echo")["instances"]}
        assert all(i["telemetry"].endswith("/metrics") for i in instances.values())
        for text in (service.client.metrics("echo"), gateway_metrics(service)):
            [family] = [f for f in text_string_to_metric_families(text)
                        if f.name == "app_requests"]
            assert {s.labels["instance_id"] for s in family.samples
                    if s.labels["node_id"] == "echo" and s.labels["app"] == "echo"} == \
                set(instances)
    finally:
        service.client.delete_node("echo")
    assert not containers(engine, "echo")


def test_failing_health_check_replaces_the_instance(service, engine, app_image):
    _, key = image_node(service, "sickly")
    try:
        (first,) = service.client.node("sickly")["instances"]
        assert gateway(service.gateway_url, "/sick", key, "POST", b"",
                       {"x-node-id": "sickly"})[0] == 200
        statuses = []

        def replaced() -> bool:
            instances = service.client.node("sickly")["instances"]
            statuses.extend(i["status"] for i in instances if i["id"] == first["id"])
            return any(i["id"] != first["id"] and i["status"] == "Healthy" for i in instances)

        wait_for(replaced, timeout=60, message="a new Healthy instance")
        assert "Unhealthy" in statuses
        wait_for(lambda: first["container_id"] not in {c.id for c in containers(engine, "sickly")},
                 timeout=20, message="the sick container to be removed")
    finally:
        service.client.delete_node("sickly")


def test_memory_limit_and_bad_input(service, engine, app_image):
    image_node(service, "limited", config="small", memory_mb=256)
    try:
        (container,) = containers(engine, "limited")
        assert container.attrs["HostConfig"]["Memory"] == 256 * 2 ** 20
        assert container.attrs["HostConfig"]["NanoCpus"] == 10 ** 9  # the small config
    finally:
        service.client.delete_node("limited")
    storage = engine.info()
    backing = dict(storage.get("DriverStatus") or []).get("Backing Filesystem")
    # An engine whose storage cannot limit a container's disk refuses disk_mb up front.
    disk = [] if backing == "xfs" else [({"disk_mb": 100}, "disk_mb")]
    for spec, field in (({"port": 0}, "port"), ({"image": "no-such-image:1"}, "image"),
                        ({"config": "huge"}, "config"), ({"network": "wifi"}, "network"),
                        ({"health": {"path": "x"}}, "health.path"),
                        ({"secrets": {"1x": "y"}}, "secrets.1x"), *disk):
        body = {"name": "refused", "image": "jupyter-deploy-test-app:latest", "port": 8080,
                **spec}
        with pytest.raises(ClientError) as error:
            service.client.create_node(body)
        assert error.value.status == 422 and error.value.body["error"]["field"] == field
        assert not containers(engine, "refused")
    assert all(n["name"] != "refused" for n in service.client.nodes())


def test_restart_adopts_running_containers(tmp_path, engine, app_image):
    first = Service(tmp_path)
    try:
        first.client.create_node({"name": "kept", "image": "jupyter-deploy-test-app:latest",
                                  "port": 8080, "network": "bridge", "min": 2,
                                  "health": {"path": "/healthz", **FAST_HEALTH}})
        wait_for(lambda: first.client.node("kept")["status"] == "Healthy", timeout=60,
                 message="node kept to be Healthy")
        before = {c.id for c in containers(engine, "kept")}
        assert len(before) == 2
    finally:
        first.stop()
    assert {c.id for c in containers(engine, "kept") if c.status == "running"} == before
    second = Service(tmp_path)
    try:
        wait_for(lambda: second.client.node("kept")["status"] == "Healthy", timeout=60,
                 message="node kept to be Healthy again")
        node = second.client.node("kept")
        assert {i["container_id"] for i in node["instances"]} == before
        assert {c.id for c in containers(engine, "kept")} == before  # no duplicates
        assert all(i["message"] == "ready" for i in node["instances"])
        second.client.delete_node("kept")
        assert not containers(engine, "kept")
    finally:
        second.stop()
        for container in containers(engine, "kept"):
            container.remove(force=True)


def test_telemetry_path_alone_scrapes_the_node_port(service, engine, app_image):
    """As the README shows it: `--telemetry-path /metrics` and no `--telemetry-port` scrapes
    the node's own port (issue 15, item 5)."""
    cli = subprocess.run(
        [sys.executable, "-m", "jupyter_deploy.cli", "node", "create", "scraped",
         "--image", "jupyter-deploy-test-app:latest", "--port", "8080",
         "--health-path", "/healthz", "--telemetry-path", "/metrics", "--timeout", "60"],
        env=service.kernel_env, cwd=service.root, capture_output=True, text=True, timeout=90)
    try:
        assert cli.returncode == 0, cli.stdout + cli.stderr
        node = service.client.node("scraped")
        assert node["telemetry"] == {"path": "/metrics", "port": 0}
        (instance,) = node["instances"]
        assert instance["telemetry"] == f"http://127.0.0.1:{instance['port']}/metrics"
        [family] = [f for f in text_string_to_metric_families(service.client.metrics("scraped"))
                    if f.name == "app_requests"]
        assert {s.labels["instance_id"] for s in family.samples} == {instance["id"]}
    finally:
        if any(n["name"] == "scraped" for n in service.client.nodes()):
            service.client.delete_node("scraped")
    assert not containers(engine, "scraped")


def test_configs_beyond_the_engine_are_refused_at_create(service, engine, app_image):
    """`--config large` (4 CPUs) on a smaller engine, or memory beyond it: 422 naming the
    field and what the engine has, never a node that crash-loops (issue 15, item 10)."""
    info = engine.info()
    cpus, memory_mb = info["NCPU"], info["MemTotal"] >> 20
    image = {"image": "jupyter-deploy-test-app:latest", "port": 8080}
    cases = [({**image, "memory_mb": memory_mb + 1}, "memory_mb", f"has {memory_mb} MB"),
             ({"checkpoint": "dockersum", "runtime": "docker", "memory_mb": memory_mb * 2},
              "memory_mb", f"has {memory_mb} MB")]
    if cpus < 4:  # the default `large` configuration has 4 CPUs
        cases += [({**image, "config": "large"}, "config", f"the Docker engine has {cpus} CPU"),
                  ({"checkpoint": "dockersum", "runtime": "docker", "config": "large"},
                   "config", f"the Docker engine has {cpus} CPU")]
    service.client.add_checkpoint(checkpoint_body("dockersum", "total = a + b", "a:float,b:float",
                                                  "total", a=1.0, b=2.0))
    try:
        for spec, field, told in cases:
            with pytest.raises(ClientError) as error:
                service.client.create_node({"name": "too-big", **spec})
            assert error.value.status == 422, (spec, error.value.body)
            assert error.value.body["error"]["field"] == field, (spec, error.value.body)
            assert told in error.value.body["error"]["message"], (spec, error.value.body)
            assert not containers(engine, "too-big")
        assert all(n["name"] != "too-big" for n in service.client.nodes())
    finally:
        if any(n["name"] == "too-big" for n in service.client.nodes()):
            service.client.delete_node("too-big")


def test_a_start_called_off_twice_leaves_no_container(engine, app_image, tmp_path, monkeypatch):
    """A start called off while its container is being made, and called off again before it
    ends (as an event loop that closes does), leaves no container once the instance is
    stopped: the engine call in its thread goes on, and stop() waits for what it made.

    The engine call is held on an event (the real call, made late), so the start is called
    off at the same point every time."""
    import asyncio
    import threading

    from jupyter_deploy.models import Instance, Node
    from jupyter_deploy.runtimes import secretfiles
    from jupyter_deploy.runtimes.docker import DockerRuntime

    from ..conftest import until

    under_way, release = threading.Event(), threading.Event()
    real_run = secretfiles.run

    def held_run(*args: Any) -> Any:
        under_way.set()
        release.wait(30)
        return real_run(*args)
    monkeypatch.setattr(secretfiles, "run", held_run)
    runtime = DockerRuntime(tmp_path / "state", "", {}, lambda node: {})
    node = Node(name="called-off", checkpoint_id="", checkpoint="",
                image="jupyter-deploy-test-app:latest", port=8080)
    instance = Instance(id="called-off-1", node="called-off")

    async def called_off_twice() -> None:
        start = asyncio.create_task(runtime.create(node, instance, tmp_path))
        await until(under_way.is_set, timeout=30, message="the container to be under way")
        start.cancel()
        for _ in range(3):  # the start takes its cancellation, then is cancelled again
            await asyncio.sleep(0)
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        release.set()
        await runtime.stop(instance, 1.0)
        await runtime.close()
    try:
        asyncio.run(called_off_twice())
    finally:
        release.set()
    assert not containers(engine, "called-off"), "the called-off start left its container"


def test_a_checkpoint_pinned_in_two_state_folders_runs_in_both(tmp_path, engine):
    """The same cell pinned by two services on one engine: the same checkpoint id, signed
    with two keys; each service's instances verify against their own key, so each needs an
    image of its own (the second reused the first's and its instances were refused)."""
    body = checkpoint_body("tripler", "y = x * 3", "x:float", "y", x=1.0)
    services: list[Service] = []
    made: list[Service] = []
    try:
        for name in ("first", "second"):
            (tmp_path / name).mkdir()
            services.append(Service(tmp_path / name))
        answers, ids = [], set()
        for service in services:
            made.append(service)
            # each folder's key makes an image of its own: a build, slow on a loaded machine
            _, key = service.create_node("tripler", body, healthy_within=120, runtime="docker")
            ids.add(service.client.request("GET", "/checkpoints/tripler")["id"])
            answers.append(gateway(service.gateway_url, "/v1/nodes/tripler:execute", key, "POST",
                                   json.dumps({"input": {"x": 2}}).encode(),
                                   {"Content-Type": "application/json"}))
        assert len(ids) == 1  # the same checkpoint in both folders
        assert [(status, json.loads(text)) for status, _, text in answers] == \
            [(200, {"output": {"y": 6.0}})] * 2
    finally:
        images = {c.image.id for c in containers(engine, "tripler")}
        for service in services:
            if service in made:  # a failed start leaves the others without the node
                service.client.delete_node("tripler")
            service.stop()
        for image in images:
            engine.images.remove(image, force=True)
    assert not containers(engine, "tripler")
