"""A real JupyterLab from the installed wheel (built once per session) and Debian's Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("JUPYTER_DEPLOY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
TIMINGS: dict[str, float] = {}


def _run(*command: str | Path, cwd: Path | None = None, timeout: float = 600,
         env: dict[str, str] | None = None) -> None:
    """Run a set-up step; its output is shown when it fails."""
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def _built_extension_is_fresh() -> bool:
    """Whether the built extension is newer than every source it is built from."""
    built = ROOT / "jupyter_deploy" / "labextension" / "package.json"
    if not (built.exists() and (built.parent / "static" / "style.js").exists()):
        return False
    sources = [ROOT / "labextension" / name for name in ("package.json", "tsconfig.json")]
    for folder in ("src", "style", "schema"):
        sources += [p for p in (ROOT / "labextension" / folder).rglob("*") if p.is_file()]
    return all(p.stat().st_mtime < built.stat().st_mtime for p in sources)


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project's wheel (built from this tree) and numpy installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium")
    reused = os.environ.get("JUPYTER_DEPLOY_UI_VENV")  # a venv an earlier run built, to
    if reused:  # iterate on the tests alone; the extension's sources are not rebuilt then
        return Path(reused)
    root = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()
    # the extension `make install` built from these very sources is packed, not built again
    skip = {"HATCH_JUPYTER_BUILDER_SKIP_NPM": "1"} if _built_extension_is_fresh() else {}
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", ROOT,
         env={**os.environ, **skip})
    TIMINGS["wheel build"] = time.monotonic() - started
    wheel = next((root / "dist").glob("jupyterlab_deploy-*.whl"))
    started = time.monotonic()
    _run(sys.executable, "-m", "venv", root / "venv")
    _run(root / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel, "numpy")
    TIMINGS["wheel install"] = time.monotonic() - started
    return root / "venv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen

    def api(self, method: str, path: str, body: object = None, base: str = "/deploy/api/"
            ) -> object:
        """Call the control API as the test user (set-up and checks, not the panel's work)."""
        request = urllib.request.Request(
            f"{self.url}{base}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None


@pytest.fixture(scope="session")
def lab(wheel_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """`jupyter-lab` of the wheel's venv: its own dirs, a free port, a token; stopped by PID."""
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "examples" / "quickstart.ipynb", notebooks)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "config"),
           "JUPYTER_DATA_DIR": str(root / "data"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "PATH": f"{wheel_venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("JUPYTER_DEPLOY_URL", "JUPYTER_DEPLOY_TOKEN", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    port, token = _free_port(), secrets.token_hex(16)
    log = open(root / "lab.log", "wb")  # noqa: SIM115
    started = time.monotonic()
    process = subprocess.Popen(
        [str(wheel_venv / "bin" / "jupyter-lab"), "--no-browser", "--allow-root",
         f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={notebooks}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True", f"--DeployApp.state_dir={root / 'state'}",
         "--DeployApp.gateway_port=0", "--DeployApp.gateway_grpc_port=0"],
        env=env, cwd=notebooks, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, process)

    def ready() -> bool:
        assert process.poll() is None, (root / "lab.log").read_text()[-4000:]
        try:
            return bool(lab.api("GET", ""))
        except OSError:
            return False

    try:
        wait_for(ready, timeout=90, interval=0.2, message="JupyterLab to answer")
        TIMINGS["lab start"] = time.monotonic() - started
        yield lab
    finally:
        process.terminate()  # the Lab; the deploy service it started runs on, so then:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _run(wheel_venv / "bin" / "jupyter-deploy", "stop", "--everything",
             f"--state-dir={root / 'state'}", timeout=60)
        sys.stderr.write(f"\nUI timings (s): {json.dumps({k: round(v, 1) for k, v in TIMINGS.items()})}\n")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/ only when asked (JUPYTER_DEPLOY_SCREENSHOTS=1), so a test
    run leaves the committed ones alone."""
    if os.environ.get("JUPYTER_DEPLOY_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        return DOCS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser(lab: Lab):
    """Chromium, for one module: Playwright's sync API holds the event loop while it runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab: Lab):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """Playwright's sync API owns the current event loop here: pytest-jupyter gets one of its
    own, not set as current, so that closing it leaves Playwright's alone."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()
