"""schemathesis against the control API's own document, on a real Jupyter server with the
extension: 0 answers of 5xx, and no node it made left running."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from ..conftest import checkpoint_body, until, worker_pids
from .test_api import ADDER, call

# Cases per operation: bounded to spare a small shared machine.
MAX_EXAMPLES = 30
OPERATIONS = 41  # in the document; test_openapi.py keeps it equal to the handler table


@pytest.mark.timeout(600)  # about 45 s alone; more when the machine is shared
async def test_schemathesis_finds_no_server_error(jp_fetch, deploy, jp_serverapp, tmp_path):
    # Something real to reach (the hooks point most calls at these names).
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    await call(jp_fetch, "nodes", method="POST", body={"name": "adder", "checkpoint": "adder"})
    await call(jp_fetch, "aliases", "a", method="PUT", body={"nodes": {"adder": 100},
                                                             "force": True})
    report = tmp_path / "junit.xml"
    try:
        text = await schemathesis_run(jp_serverapp, report, tmp_path)
        suite = ElementTree.parse(report).getroot().find("testsuite")
        assert suite is not None and int(suite.get("tests", "0")) == OPERATIONS, text[-3000:]
        assert (suite.get("failures"), suite.get("errors")) == ("0", "0"), text[-6000:]
    finally:
        await remove_everything(jp_fetch)
    await until(lambda: not worker_pids(deploy.state_dir), timeout=30,
                message="every instance the run made to stop")


async def schemathesis_run(serverapp, report: Path, where: Path) -> str:
    """`schemathesis run` on the server's document with its token; its output."""
    url = f"{serverapp.connection_url.rstrip('/')}/deploy/api/openapi.json"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.control.schemathesis_hooks",
           "PYTHONPATH": str(Path(__file__).parents[2])}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "run", url,
        "-H", f"Authorization: token {serverapp.identity_provider.token}",
        "--checks", "no_server_fault", "--max-examples", str(MAX_EXAMPLES),
        "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "20",
        "--seed", "12", "--report", "junit", "--report-junit-path", str(report),
        env=env, cwd=where, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=500)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    return text


async def remove_everything(jp_fetch) -> None:
    """Delete every alias, then every node (an alias holds on to its nodes)."""
    for alias in (await call(jp_fetch, "aliases"))["aliases"]:
        await call(jp_fetch, "aliases", alias["name"], method="DELETE")
    for node in (await call(jp_fetch, "nodes"))["nodes"]:
        await call(jp_fetch, "nodes", node["name"], method="DELETE")
    assert (await call(jp_fetch, "nodes"))["nodes"] == []
