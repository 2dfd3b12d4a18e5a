"""The deploy service is a process of its own, one per state folder; a notebook server is its
client (issue 13): it starts the service when none runs, proxies the control API, and its
stop or restart leaves the service, the gateway and every instance running."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_deploy.client import DeployClient, discovery
from jupyter_deploy.gateway import fleet

from ..conftest import alive, checkpoint_body, wait_for, worker_pids
from .load import Load, Target
from .servers import NotebookServer, environment, jupyter_deploy, stop_all, stop_service
from .test_api import ADDER


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A user's folders; whatever service a test left running is stopped afterwards."""
    yield tmp_path
    stop_all()
    if discovery.read_service(tmp_path / "state") is not None:
        stop_service(tmp_path / "state", environment(tmp_path))
    for pid in _services(tmp_path):  # one that lost the lease, still on its way out
        wait_for(lambda pid=pid: not alive(pid), timeout=60, message=f"serve {pid} to exit")


def healthy(client: DeployClient, name: str = "adder", **spec: object) -> tuple[dict, str]:
    """A Healthy node of the adder cell, and its key."""
    client.add_checkpoint(checkpoint_body("adder", **ADDER))
    key = client.create_node({"name": name, "checkpoint": "adder", **spec})["key"]
    wait_for(lambda: client.node(name)["status"] == "Healthy", timeout=30,
             message=f"{name} to be Healthy")
    return client.node(name), key


def test_the_server_starts_a_service_that_outlives_it(root):
    server = NotebookServer(root, root / "state")
    served = server.wait_ready()
    assert served["state_dir"] == str(root / "state")
    info = discovery.read_service(root / "state")
    assert info is not None and info["pid"] != server.process.pid
    assert (root / "state" / "service.json").stat().st_mode & 0o777 == 0o600
    client = DeployClient(server.api, server.token)
    node, _ = healthy(client, min=2)
    before = {i["id"] for i in node["instances"]}

    server.stop()
    assert alive(info["pid"]) and len(worker_pids(root / "state")) == 2
    again = NotebookServer(root, root / "state", name="again")
    again.wait_ready()
    assert discovery.read_service(root / "state")["pid"] == info["pid"]  # the same service
    after = DeployClient(again.api, again.token).node("adder")
    assert after["status"] == "Healthy" and {i["id"] for i in after["instances"]} == before
    again.stop()


def test_the_proxy_passes_errors_and_refuses_strangers(root):
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    status, body = server.call("GET", "/nodes/nowhere")
    assert status == 404 and "nowhere" in body["error"]["message"]
    status, body = server.call("POST", "/nodes", {"name": "Bad Name", "checkpoint": "x"})
    assert status == 422 and body["error"]["field"] == "name"
    status, body = server.call("POST", "/checkpoints", token="wrong")
    assert status == 403  # Jupyter's own checks, before anything reaches the service
    status, _ = server.call("GET", "/nodes", token="wrong")
    assert status == 403
    server.stop()


def test_the_proxy_streams_logs_and_long_polls(root):
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    client = DeployClient(server.api, server.token)
    healthy(client)
    # The stream never ends while the node runs: a proxy that waited for the end of the
    # answer would deliver nothing.
    lines = client.follow_logs("adder", tail=4096)
    got: list[dict] = []
    reader = threading.Thread(target=lambda: got.append(next(lines)), daemon=True)
    reader.start()
    reader.join(15)
    assert got and "restored adder" in got[0]["log"], got
    since = client.events()[-1]["seq"]
    begun = time.monotonic()
    threading.Timer(1.0, lambda: client.set_alias("shop", {"nodes": {"adder": 100}})).start()
    events = client.events(since=since, wait=20)
    assert events and 0.8 < time.monotonic() - begun < 10  # woken by the change
    server.stop()


def test_two_servers_at_once_share_one_service(root):
    first = NotebookServer(root, root / "state", name="first")
    second = NotebookServer(root, root / "state", name="second")
    one, two = first.wait_ready(), second.wait_ready()
    assert one == two
    pid = discovery.read_service(root / "state")["pid"]
    # Both started one; the one that lost the folder's lease exits.
    wait_for(lambda: _services(root) == [pid], timeout=60, message="one service only")
    first.stop()
    second.stop()


def _answer(server: NotebookServer, path: str) -> tuple[int, dict] | None:
    """The server's answer to GET `path`; None while it does not listen yet."""
    try:
        return server.call("GET", path)
    except OSError:
        return None


def _services(root: Path) -> list[int]:
    """The live `jupyter deploy serve` processes of the folder."""
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and _serves(p, root) and alive(int(p.name))]


def _serves(proc: Path, root: Path) -> bool:
    try:
        args = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in args and any(str(root / "state").encode() in a for a in args)


def test_a_service_it_started_and_that_died_is_started_again(root):
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    pid = discovery.read_service(root / "state")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), timeout=10, message="the service to die")
    status, body = server.call("GET", "/nodes")
    assert (status, body) == (200, {"nodes": []}), body  # it waited for the new one
    assert discovery.read_service(root / "state")["pid"] != pid
    server.stop()


def test_an_unreachable_service_is_a_503_that_says_how_to_start_it(root):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = NotebookServer(root, root / "state", service_url=f"http://127.0.0.1:{port}/deploy/api",
                            service_token="x")
    status, body = wait_for(lambda: _answer(server, "/nodes"), timeout=30,
                            message="the server to listen")
    assert status == 503
    assert "does not answer" in body["error"]["message"]
    assert "c.DeployApp.service_url" in body["error"]["message"]
    server.stop()
    assert discovery.read_service(root / "state") is None  # it started nothing


def test_serve_on_a_folder_in_use_exits_with_the_reason(root):
    env = environment(root)
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    pid = discovery.read_service(root / "state")["pid"]
    done = jupyter_deploy("serve", f"--state-dir={root / 'state'}", "--port=0",
                          "--gateway-port=0", "--gateway-grpc-port=0", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"jupyter deploy serve: the deploy service did not start: the state folder "
        f"{root / 'state'} is in use by pid {pid}")
    server.stop()


def test_serve_with_its_gateway_port_taken_exits_with_the_reason(root):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = jupyter_deploy("serve", f"--state-dir={root / 'state'}", "--port=0",
                              f"--gateway-port={port}", "--gateway-grpc-port=0",
                              env=environment(root))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("jupyter deploy serve: the deploy service did not start: the "
                           f"gateway cannot listen on 127.0.0.1:{port}"), last


def test_settings_from_the_command_line_reach_the_service_it_starts(root):
    # as JupyterLab is started by hand: these arrive as text, and the service wants numbers
    server = NotebookServer(root, root / "state", argv=(
        "--DeployApp.gateway_port=0", "--DeployApp.request_timeout=4"))
    served = server.wait_ready()
    assert served["gateway_url"].startswith("http://127.0.0.1:")
    config = json.loads((root / "state" / "serve_config.json").read_text())["DeployApp"]
    assert config["gateway_port"] == 0 and config["request_timeout"] == 4.0


def test_status_and_stop(root):
    env = environment(root)
    state = f"--state-dir={root / 'state'}"
    done = jupyter_deploy("status", state, env=env)
    assert done.returncode == 1 and "no deploy service runs" in done.stdout
    server = NotebookServer(root, root / "state")
    served = server.wait_ready()
    healthy(DeployClient(server.api, server.token))
    info = discovery.read_service(root / "state")
    done = jupyter_deploy("status", state, env=env)
    assert done.returncode == 0, done.stderr
    assert f"running, pid {info['pid']}" in done.stdout
    assert f"gateway:     {served['gateway_url']}" in done.stdout
    assert "nodes:       1" in done.stdout
    server.stop()
    instances, gateways = set(worker_pids(root / "state")), gateway_pids(root / "state")
    assert instances and gateways
    done = jupyter_deploy("stop", state, env=env)  # an upgrade's stop: nodes serve on
    assert done.returncode == 0 and f"(pid {info['pid']})" in done.stdout, done.stderr
    assert not (root / "state" / "service.json").exists()
    assert set(worker_pids(root / "state")) == instances
    assert gateway_pids(root / "state") == gateways
    again = NotebookServer(root, root / "state", name="again")
    again.wait_ready()  # its service takes back what the last one left
    assert set(worker_pids(root / "state")) == instances
    again.stop()
    done = jupyter_deploy("stop", "--everything", state, env=env)
    assert done.returncode == 0 and "with its instances and gateway workers" in done.stdout
    assert not worker_pids(root / "state") and not gateway_pids(root / "state")
    done = jupyter_deploy("stop", state, env=env)
    assert done.returncode == 0 and "nothing to stop" in done.stdout


def gateway_pids(state_dir: Path) -> set[int]:
    """The gateway worker processes of the folder."""
    return set(fleet.worker_pids(state_dir).values())


def test_restarting_the_server_under_load_fails_no_request(root):
    """32 clients call a node and an alias through the gateway while the notebook server is
    stopped and started again (about 10 s here; benchmarks/restarts.py runs 30 s)."""
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    client = DeployClient(server.api, server.token)
    node, key = healthy(client, min=2, max_queue=64)  # 32 callers: never a full queue
    alias = client.set_alias("shop", {"nodes": {"adder": 100}})
    body = json.dumps({"input": {"a": 1.0, "b": 2.0}}).encode()
    load = Load([Target(node["endpoint"], key, body),
                 Target(alias["alias"]["endpoint"], alias["key"], body)])
    load.start()
    time.sleep(2)
    server.stop()
    again = NotebookServer(root, root / "state", name="again")
    again.wait_ready()
    time.sleep(2)
    tallies = load.stop()
    for endpoint, tally in tallies.items():
        assert tally.ok > 50 and tally.failed == 0, (endpoint, tally.failures)
    again.stop()



def test_files_left_by_killed_processes_mislead_no_one(root):
    """No cleanup is needed for correctness: a hub stops a server with no `stop_extension`,
    and `kill -9` runs nothing at all."""
    env = environment(root)
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    pid = discovery.read_service(root / "state")["pid"]
    server.stop(signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), timeout=10, message="the service to die")
    assert (root / "state" / "service.json").exists()  # left behind, and not believed:
    done = jupyter_deploy("status", f"--state-dir={root / 'state'}", env=env)
    assert done.returncode == 1 and "no deploy service runs" in done.stdout
    again = NotebookServer(root, root / "state", name="again")
    again.wait_ready()  # it started a new service rather than trust the old file
    assert discovery.read_service(root / "state")["pid"] not in (pid, 0)


def test_a_stopped_service_is_a_503_until_one_serves_again(root):
    env = environment(root)
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    done = jupyter_deploy("stop", f"--state-dir={root / 'state'}", env=env)
    assert done.returncode == 0, done.stderr
    status, body = server.call("GET", "/nodes")
    assert status == 503 and body["error"]["code"] == "service_unavailable"
    assert f"`jupyter deploy serve --state-dir {root / 'state'}`" in body["error"]["message"]
    with open(root / "serve.log", "wb") as log:  # started by hand, as the message says
        subprocess.Popen([sys.executable, "-m", "jupyter_deploy.cli", "serve",
                          f"--state-dir={root / 'state'}", "--port=0", "--gateway-port=0",
                          "--gateway-grpc-port=0"], env=env, stdin=subprocess.DEVNULL,
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server.wait_ready()  # the same notebook server, now in front of the new service


def test_a_configured_service_is_used_and_nothing_is_started(root):
    env = environment(root)
    with open(root / "serve.log", "wb") as log:
        subprocess.Popen([sys.executable, "-m", "jupyter_deploy.cli", "serve",
                          f"--state-dir={root / 'state'}", "--port=0", "--gateway-port=0",
                          "--gateway-grpc-port=0"], env=env, stdin=subprocess.DEVNULL,
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    info = wait_for(lambda: discovery.read_service(root / "state"), timeout=60,
                    message="the service to start")
    server = NotebookServer(root, root / "elsewhere", service_url=info["url"],
                            service_token=info["token"])
    assert server.wait_ready()["state_dir"] == str(root / "state")
    assert not (root / "elsewhere").exists()  # its own folder was never used


def test_a_browser_session_goes_through_with_its_xsrf_token_only(root):
    """What the panel does: a login cookie, and the _xsrf cookie echoed in X-XSRFToken."""
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(f"{server.url}/login", timeout=30).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    form = urllib.parse.urlencode({"password": server.token, "_xsrf": xsrf}).encode()
    browser.open(f"{server.url}/login", data=form, timeout=30).read()

    def post(headers: dict[str, str]) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{server.api}/checkpoints", data=json.dumps(checkpoint_body("adder", **ADDER))
            .encode(), method="POST", headers={"Content-Type": "application/json", **headers})
        try:
            with browser.open(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, body = post({})
    assert status == 403 and "_xsrf" in body["error"]["message"]
    status, body = post({"X-XSRFToken": xsrf})
    assert status == 201 and body["name"] == "adder", body


def _connections_to(port: int) -> int:
    """Established TCP connections (IPv4, this host) whose far end is `port`."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].split(":")[1], 16) == port:
            count += 1
    return count


def test_a_caller_that_hangs_up_on_a_stream_frees_the_service_side(root):
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    client = DeployClient(server.api, server.token)
    healthy(client)
    port = int(discovery.read_service(root / "state")["url"].split(":")[2].split("/")[0])
    idle = _connections_to(port)
    follow = client.open("GET", "/nodes/adder/logs", stream=True, follow="true", tail=4096)
    assert follow.readline()  # streaming: one connection from the proxy to the service
    wait_for(lambda: _connections_to(port) == idle + 1, timeout=10, message="the stream")
    follow.close()
    wait_for(lambda: _connections_to(port) == idle, timeout=10,
             message="the proxy to close its side of the stream")
