"""README.md's examples, run as a reader would run them (issue 15, item 12).

Every fenced ```python block runs, in README order, in one real IPython kernel (magics
included) connected to a service of this module's own; every ```bash, ```sh and ```console
block runs in bash with `$KEY` set to the key the last `node create` printed, and with the
gateway's default addresses replaced by the test service's. A `# → X` comment is a claim:
X must be in what the block printed.

A block that cannot run here has `<!-- readme-test: skip KEY -->` on the line before it, and
KEY has its reason in SKIPS below. Some blocks need what a reader's notebook has already
(a model, a second version of a cell): SETUP gives it, keyed by a line of the block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Service, standalone
from .kernel.test_magics import Kernel
from .runtimes.test_docker import _engine

README = Path(__file__).resolve().parents[1] / "README.md"
SHELLS = {"bash", "sh", "console"}
RUN = SHELLS | {"python"}
MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s+([a-z0-9-]+)\s*-->")
CLAIM = re.compile(r"#\s*→\s*(.+?)\s*$", re.M)
OPTIONAL = re.compile(r" \[--[^\]]*\]")  # a synopsis's optional part: `[--config small]`

SKIPS = {
    "make-targets": "`make demo` creates a venv and pip-installs the package, and `make test` "
                    "runs the whole suite, this test included",
    "image-node": "registry.example.com/team/web:1.2 is a placeholder: no registry here has it "
                  "(tests/runtimes/test_docker.py runs image nodes from a local image)",
    "grpc-image": "registry.example.com/team/scorer:2 is a placeholder, and grpcurl is not "
                  "packaged here (tests/runtimes/test_grpc_passthrough.py makes these calls "
                  "with grpcio against a local image)",
    "grpc": "grpcurl is neither a Debian bookworm nor a PyPI package here, and the node "
            "`predictor` is the quickstart's (tests/gateway/test_grpc*.py make these calls "
            "with grpcio)",
    "cli-synopsis": "a synopsis of every verb (alternatives with `|`, options in brackets); "
                    "tests/client/test_cli.py runs each verb",
}
REMOTE_IMAGE = re.compile(r"--image[ =]([a-z0-9-]+\.[a-z0-9.-]+(?::\d+)?/\S+)")
# What the reader's notebook holds by then, keyed by a line of the block that needs it.
SETUP: dict[str, list[str]] = {
    # a second version of `adder`: the cell's state changed, then the same pin again
    "--checkpoint adder@2": ["scale = 3.0", "<README: %%deploy pin adder>"],
    "%%deploy pin scorer": [
        "import numpy as np\nimport pandas as pd\nx = np.ones((3, 4), dtype='float32')\n"
        "threshold = 0.5",
        "class Model:\n    def predict(self, x):\n        return x.sum(axis=1)\nmodel = Model()"],
    "metrics.histogram(\"score\"": ["score = 0.75"],
}


@dataclass
class Block:
    lang: str
    code: str
    line: int  # of the opening fence, 1-based
    section: str
    skip: str | None  # the key of its skip marker
    id: str = ""  # its heading's slug and its rank under it: stable while other parts change


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block with its language (the fence's first word), heading and marker."""
    blocks: list[Block] = []
    lines = text.splitlines()
    section, i = "top", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").strip().lower()).strip("-")
        fence = re.match(r"^(`{3,})\s*([\w+-]*)", line)
        if fence is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].startswith(fence.group(1))), len(lines))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(before)
        rank = sum(block.section == section for block in blocks) + 1
        blocks.append(Block(fence.group(2).lower(), "\n".join(lines[i + 1:end]), i + 1,
                            section, marker.group(1) if marker else None, f"{section}-{rank}"))
        i = end + 1
    return blocks


BLOCKS = [block for block in fenced_blocks(README.read_text()) if block.lang in RUN]


class Reader:
    """A reader following the README: one kernel, one shell environment, one service."""

    def __init__(self, service: Service, kernel: Kernel, cwd: Path) -> None:
        self.service = service
        self.kernel = kernel
        self.cwd = cwd
        self.env = {**service.kernel_env,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        self.done: set[int] = set()

    def follow_to(self, block: Block) -> str:
        """Run the README's runnable blocks up to `block` (once each); what `block` printed."""
        printed = ""
        for earlier in BLOCKS:
            if earlier.line > block.line:
                break
            if earlier.skip is None and earlier.line not in self.done:
                self.done.add(earlier.line)
                printed = self.run(earlier)
        return printed

    def run(self, block: Block) -> str:
        for needle, cells in SETUP.items():
            if needle in block.code:
                for cell in cells:
                    self.cell(_readme_cell(cell), block)
        code = OPTIONAL.sub("", block.code)
        # the README's addresses are the defaults; this service listens on ports of its own
        code = code.replace("127.0.0.1:8890", self.service.gateway_url.split("//", 1)[1])
        code = code.replace("127.0.0.1:8891", self.service.grpc_address)
        if block.lang == "python":
            return self.cell(code, block)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], env=self.env,
                              cwd=self.cwd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"README line {block.line}:\n{code}\n{done.stderr}"
        return done.stdout

    def cell(self, code: str, block: Block) -> str:
        result = self.kernel.run(code, timeout=300)
        assert not result.error, (f"README line {block.line}:\n{code}\n{result.error}\n"
                                  f"{result.stderr}")
        printed = "\n".join([result.stdout, result.value, *(
            d.get("text/plain", "") for d in result.data)])
        keys = re.findall(r"key:\s+(jd_[\w-]+)", printed)
        if keys and "node create" in code:
            self.env["KEY"] = keys[-1]
        return printed


def _readme_cell(cell: str) -> str:
    """A SETUP cell; `<README: TEXT>` is the README's python block that starts with TEXT."""
    named = re.fullmatch(r"<README: (.+)>", cell)
    if named is None:
        return cell
    return next(b.code for b in BLOCKS if b.lang == "python" and b.code.startswith(
        named.group(1)))


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    from jupyter_client.manager import start_new_kernel

    root = tmp_path_factory.mktemp("readme")
    with standalone(root) as service:
        manager, client = start_new_kernel(kernel_name="python3", env=service.kernel_env,
                                           cwd=str(root))
        try:
            yield Reader(service, Kernel(client), root)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
            _remove_everything(service)


def _remove_everything(service: Service) -> None:
    """What the examples made: containers outlive their service, so nodes go first."""
    for alias in service.client.aliases():
        service.client.delete_alias(alias["name"])
    nodes = service.client.nodes()
    images: set[str] = set()
    if any(node.get("runtime") == "docker" for node in nodes):
        import docker

        engine = docker.from_env()
        images = {container.image.id for node in nodes for container in engine.containers.list(
            all=True, filters={"label": f"jupyter-deploy.node={node['name']}"})}
    for node in nodes:
        service.client.delete_node(node["name"])
    for image in images:  # the checkpoint images the examples built
        engine.images.remove(image, force=True)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_readme_example(block: Block, reader: Reader) -> None:
    if block.skip is not None:
        pytest.skip(f"README line {block.line}: {SKIPS[block.skip]}")
    # A block that runs must never reach past this machine: an image from a registry host
    # would be pulled from the network. Such a block carries a skip marker instead.
    remote = REMOTE_IMAGE.search(block.code)
    assert remote is None, (f"README line {block.line} would pull {remote.group(1)}: mark it "
                            "<!-- readme-test: skip KEY --> with its reason in SKIPS")
    if "--runtime docker" in block.code:
        engine = _engine()
        if isinstance(engine, str):
            pytest.skip(f"README line {block.line} needs a Docker engine: {engine}")
    printed = reader.follow_to(block)
    for claim in CLAIM.findall(block.code):
        assert claim.rstrip("…") in printed, f"README line {block.line}: {claim!r} not in\n" \
                                             f"{printed}"


def test_every_skip_is_listed_with_its_reason() -> None:
    used = [block.skip for block in BLOCKS if block.skip is not None]
    assert set(used) <= set(SKIPS), f"skip markers without a reason here: {set(used) - set(SKIPS)}"
    assert set(SKIPS) <= set(used), f"reasons for skips the README no longer has: " \
                                    f"{set(SKIPS) - set(used)}"
    needed = [needle for needle in SETUP if not any(needle in b.code for b in BLOCKS)]
    assert not needed, f"SETUP for blocks the README no longer has: {needed}"
    assert sum(block.skip is None for block in BLOCKS) >= 8, "the README's examples were lost"


def test_fences_are_found_by_language() -> None:
    text = ("# Top\n```bash\necho one\n```\n## Two words\n<!-- readme-test: skip why -->\n\n"
            "````python\nprint(2)\n```\n````\n```\nplain\n```\n")
    assert [(b.lang, b.code, b.line, b.id, b.skip) for b in fenced_blocks(text)] == [
        ("bash", "echo one", 2, "top-1", None),
        ("python", "print(2)\n```", 8, "two-words-1", "why"),
        ("", "plain", 12, "two-words-2", None)]
