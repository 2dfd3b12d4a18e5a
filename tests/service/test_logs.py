"""Request ids and instance logs, against a standalone service with tiny log files."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_deploy.client import ClientError

from ..conftest import Service, checkpoint_body, standalone, wait_for
from ..gateway.test_gateway import post

LOG_MAX_BYTES = 4096
LOG_FILES = 3
TALK = """import os, sys
print(f"saying {word}")
print(f"to stderr {word}", file=sys.stderr)
os.write(1, f"raw {word}\\n".encode())
if word == "boom":
    raise ValueError("no boom allowed")
said = word
"""
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
GENERATED = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


@pytest.fixture(scope="module")
def small_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose instance logs rotate at 4 KB, 3 files kept."""
    with standalone(tmp_path_factory.mktemp("logs"), f"--DeployApp.log_max_bytes={LOG_MAX_BYTES}",
                    f"--DeployApp.log_files={LOG_FILES}") as running:
        yield running


def make_talker(service: Service, name: str) -> tuple[dict, str]:
    return service.create_node(name, checkpoint_body("talker", TALK, "word:str", "said",
                                                     word="hi"))


@pytest.fixture(scope="module")
def talker(small_logs: Service) -> Iterator[tuple[dict, str]]:
    yield make_talker(small_logs, "talker")
    small_logs.client.delete_node("talker")


def say(node: dict, key: str, word: str, request_id: str | None = None) -> tuple[int, dict, dict]:
    headers = {"x-request-id": request_id} if request_id else {}
    return post(node["endpoint"], {"input": {"word": word}}, key, **headers)


def whole_log(service: Service, node: str) -> str:
    return "".join(item["log"] for item in service.client.logs(node, tail=16 * 2 ** 20))


def test_every_answer_carries_a_request_id(talker, small_logs):
    node, key = talker
    status, _, headers = say(node, key, "given", "caller-id.1_x")
    assert status == 200 and headers["x-request-id"] == "caller-id.1_x"
    made = [say(node, key, "unsafe", bad)[2]["x-request-id"] for bad in ("has space", "x" * 65)]
    made += [say(node, key, "none")[2]["x-request-id"] for _ in range(2)]
    assert all(GENERATED.match(i) for i in made) and len(set(made)) == 4
    for status, headers in [post(node["endpoint"], {"input": {"word": "k"}})[::2],  # no key
                            post(node["endpoint"], {"input": {"word": 1}}, key)[::2],
                            post(small_logs.gateway_url + "/v1/nodes/nobody:execute", {})[::2]]:
        assert status in (401, 422, 404) and GENERATED.match(headers["x-request-id"])
    url = urllib.parse.urlsplit(node["endpoint"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"POST {url.path} HTTP/1.1\r\nHost: x\r\nx-request-id: big-one\r\n"
                     f"Content-Length: {17 * 1024 * 1024}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"\r\nx-request-id: big-one\r\n" in answer


def test_prints_are_logged_with_their_request_id(talker, small_logs):
    node, key = talker
    assert say(node, key, "hello", "req-hello")[0] == 200
    assert say(node, key, "other", "req-other")[0] == 200
    [item] = small_logs.client.logs("talker", request_id="req-hello")
    lines = item["log"].splitlines()
    assert re.fullmatch(rf"{STAMP} \[req-hello\] saying hello", lines[0]), lines
    assert any(re.fullmatch(rf"{STAMP} \[req-hello\] to stderr hello", line) for line in lines)
    assert all("[req-hello] " in line for line in lines)
    assert "other" not in item["log"]
    log = wait_for(lambda: (text := whole_log(small_logs, "talker")) and "raw other" in text
                   and text, message="what the cell wrote to fd 1 to reach the log")
    assert re.search(rf"^{STAMP} INFO restored talker", log, re.M)  # outside a request: no id


def test_calls_through_the_control_api_are_logged_with_a_request_id(talker, small_logs):
    response = small_logs.client.open("POST", "/nodes/talker:execute", {"input": {"word": "api"}})
    with response:
        request_id = response.headers["x-request-id"]
    [item] = small_logs.client.logs("talker", request_id=request_id)
    assert f"[{request_id}] saying api" in item["log"]


def test_a_cell_error_is_logged_with_its_request_id(talker, small_logs):
    node, key = talker
    status, body, _ = say(node, key, "boom", "req-boom")
    assert status == 500 and body["error_name"] == "ValueError"
    [item] = small_logs.client.logs("talker", request_id="req-boom")
    assert "[req-boom] Traceback (most recent call last):" in item["log"]
    assert "[req-boom] ValueError: no boom allowed" in item["log"]
    assert '[req-boom]   File "<cell talker>", line 6, in <module>' in item["log"]


def test_logs_rotate_and_stay_bounded(talker, small_logs):
    node, key = talker
    for number in range(12):  # about 1 KB of log each
        assert say(node, key, f"{number:03d}-" + "w" * 300, f"rot-{number}")[0] == 200
    path = Path(node["instances"][0]["log_path"])
    wait_for(lambda: "raw 011-" in path.read_text(errors="replace"),
             message="the last raw line to be logged")
    files = sorted(path.parent.glob(path.name + "*"))
    assert [f.name for f in files] == [path.name, path.name + ".1", path.name + ".2"]
    assert sum(f.stat().st_size for f in files) <= LOG_FILES * LOG_MAX_BYTES
    tail = small_logs.client.logs("talker", tail=6000)[0]["log"]
    assert path.stat().st_size < len(tail) <= 6000  # it reaches into the rotated file
    assert tail.splitlines()[-1].endswith("raw 011-" + "w" * 300)
    assert re.match(STAMP, tail)  # whole lines only
    older = small_logs.client.logs("talker", request_id="rot-8")[0]["log"]
    assert "[rot-8] saying 008-" in older


def test_bad_log_queries_name_their_field(talker, small_logs):
    for query, field in [({"tail": "lots"}, "tail"), ({"request_id": "a b"}, "request_id"),
                         ({"follow": "maybe"}, "follow"), ({"instance": "talker-none"},
                                                           "instance")]:
        with pytest.raises(ClientError) as info:
            small_logs.client.request("GET", "/nodes/talker/logs", **query)
        assert info.value.body["error"]["field"] == field, query


def follow(service: Service, node: str, **options) -> tuple[list[dict], threading.Thread]:
    items: list[dict] = []
    thread = threading.Thread(target=lambda: items.extend(
        service.client.follow_logs(node, **options)), daemon=True)
    thread.start()
    return items, thread


def test_follow_streams_through_rotations_until_the_node_is_deleted(small_logs):
    node, key = make_talker(small_logs, "followed")
    items, thread = follow(small_logs, "followed", request_id=None)

    def text() -> str:
        return "".join(item["log"] for item in items)

    for number in range(14):  # each about 1 KB: the log rotates more than once
        assert say(node, key, f"{number:03d}-" + "f" * 300, f"fol-{number}")[0] == 200
        line = f"raw {number:03d}-"
        wait_for(lambda line=line: line in text(), message=f"{line} to be followed")
    assert all(text().count(f"[fol-{n}] saying {n:03d}-") == 1 for n in range(1, 14))
    assert {item["instance"] for item in items} == {node["instances"][0]["id"]}
    small_logs.client.delete_node("followed")
    wait_for(lambda: not thread.is_alive(), timeout=15, message="the follow to end")


def test_cli_follows_one_request_until_interrupted(talker, small_logs, tmp_path):
    node, key = talker
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_deploy.cli", "node", "logs", "talker", "--follow",
         "--tail", "0", "--request-id", "cli-req"], env=small_logs.env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        def said() -> bool:
            say(node, key, "elsewhere", "not-cli")
            say(node, key, "cli", "cli-req")
            return any(line.endswith("] saying cli\n") for line in lines)

        wait_for(said, timeout=30, interval=0.3, message="the CLI to print the request's lines")
        instance = node["instances"][0]["id"]
        assert all(line.startswith(f"{instance} | ") and "[cli-req]" in line for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read()
    assert "Traceback" not in process.stderr.read()
