"""Local code a pinned cell reaches, modules and packages beside the notebook, ships with the
checkpoint and is importable in every instance, on the process and docker runtimes
(issue 15, item 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_deploy.kernel.capture import capture
from jupyter_deploy.models import InvalidInput
from jupyter_deploy.types import parse_fields

from ..conftest import wait_for
from ..runtimes.test_docker import engine  # noqa: F401 - the fixture, for the docker test
from .kernels import running_kernel

FILES = {
    "helper.py": "def triple(n):\n    return 3 * n\n",
    # a package whose modules reach each other by relative imports
    "shapes/__init__.py": "from .area import square\n",
    "shapes/area.py": "from . import units\n\n\ndef square(side):\n"
                      "    return units.SCALE * side * side\n",
    "shapes/units.py": "SCALE = 10\n",
    "shapes/__pycache__/units.cpython-311.pyc": "",  # never shipped
}
CELL = "%%deploy pin local --inputs n:int --outputs y,z\ny = helper.triple(n)\nz = shapes.square(n)"


def write_files(folder: Path) -> Path:
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def notebook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_files(tmp_path_factory.mktemp("notebook"))


@pytest.fixture(scope="module")
def kernel(service, notebook_dir):
    """A kernel whose working folder is the notebook's, with helper.py and shapes/ in it;
    it writes .pyc files, as Python does unless told not to."""
    with running_kernel(service, notebook_dir, PYTHONDONTWRITEBYTECODE="") as running:
        yield running


def serve_and_call(kernel, service, node: str, options: str, call: str) -> str:
    """Create a node, wait until it is Healthy, call it once, delete it: the call's value."""
    kernel.ok(f"%deploy node create {node} {options}")
    try:
        wait_for(lambda: service.client.node(node)["status"] == "Healthy", timeout=60,
                 message=f"node {node} to be Healthy")
        return kernel.ok(f"%deploy call {node} {call}").value
    finally:
        kernel.ok(f"%deploy node delete {node}")


def test_local_module_and_package_ship_with_the_checkpoint(kernel, service, notebook_dir):
    kernel.ok("import helper\nimport shapes\nn = 2")
    pinned = kernel.ok(CELL)
    assert "local code: helper.py, shapes/ (3 files)" in pinned.stdout
    first = service.client.request("GET", "/checkpoints/local")
    assert [c["module"] for c in first["environment"]["local_code"]] == ["helper", "shapes"]
    # The pinned content is what instances run, whatever becomes of the files afterwards.
    (notebook_dir / "helper.py").write_text("def triple(n):\n    return -1\n")
    called = serve_and_call(kernel, service, "local-node", "--checkpoint local", "n=5")
    assert called == "{'y': 15, 'z': 250}"
    # Pinning again without a reload would ship code the notebook did not run: said so.
    assert "helper.py changed on disk since the notebook imported it" in kernel.ok(CELL).stderr
    # The content address covers the files: new code, a new version.
    kernel.ok("import importlib\nimportlib.reload(helper)")
    assert "changed on disk" not in kernel.ok(CELL).stderr
    second = service.client.request("GET", "/checkpoints/local")
    assert second["version"] == first["version"] + 1 and second["id"] != first["id"]
    (notebook_dir / "helper.py").write_text(FILES["helper.py"])
    kernel.ok("importlib.reload(helper)")


def test_local_code_reached_through_a_notebook_function_ships(kernel, service):
    kernel.ok("from shapes.area import square as sq\ndef area_of(side):\n    return sq(side)\n"
              "side = 3")
    kernel.ok("%%deploy pin via-function --inputs side:int --outputs a\na = area_of(side)")
    checkpoint = service.client.request("GET", "/checkpoints/via-function")
    assert [c["module"] for c in checkpoint["environment"]["local_code"]] == ["shapes"]
    called = serve_and_call(kernel, service, "via-function", "--checkpoint via-function",
                            "side=2")
    assert called == "{'a': 40}"


def test_a_local_module_named_like_a_distribution_ships_as_local_code(kernel, service,
                                                                      notebook_dir):
    """Where a module is found decides, not its name: the notebook's own `pandocfilters.py`
    is imported in the kernel, so it is what the instances must run."""
    (notebook_dir / "pandocfilters.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    kernel.ok("import pandocfilters\nword = 'hi'")
    kernel.ok("%%deploy pin shout --inputs word:str --outputs said\n"
              "said = pandocfilters.shout(word)")
    environment = service.client.request("GET", "/checkpoints/shout")["environment"]
    assert [c["module"] for c in environment["local_code"]] == ["pandocfilters"]
    assert "pandocfilters" not in {r["distribution"] for r in environment["requirements"]}
    called = serve_and_call(kernel, service, "shout", "--checkpoint shout", "word=hey")
    assert called == "{'said': 'HEY!'}"


def test_code_with_no_file_is_refused_at_pin_time(kernel):
    kernel.ok("import sys, types\nmade = types.ModuleType('made')\nmade.f = lambda v: v\n"
              "sys.modules['made'] = made\nv = 1")
    result = kernel.run("%%deploy pin made --inputs v:int --outputs w\nw = made.f(v)")
    assert "UsageError" in result.error
    assert "module `made`, which has no file to ship" in result.error


def test_a_snapshot_restores_its_code_in_a_fresh_interpreter(tmp_path):
    """The instance's side, without a service: state.pkl alone brings the code back."""
    write_files(tmp_path / "nb")
    sys.path.insert(0, str(tmp_path / "nb"))
    try:
        import shapes  # noqa: F401 - as the notebook imports it

        namespace = {"shapes": sys.modules["shapes"], "n": 2}
        exec("z = shapes.square(n)", namespace)
        meta, data = capture("c", "z = shapes.square(n)", namespace,
                             parse_fields("n:int", "--inputs"), parse_fields("z", "--outputs"),
                             {"n": 2})
    finally:
        sys.path.remove(str(tmp_path / "nb"))
        for name in [m for m in sys.modules if m == "shapes" or m.startswith("shapes.")]:
            del sys.modules[name]
    (tmp_path / "state.pkl").write_bytes(data)
    script = ("import sys\nfrom pathlib import Path\n"
              "from jupyter_deploy.worker.snapshot import Snapshot\n"
              "state = Snapshot(Path(sys.argv[1])).load()\n"
              "print(state['shapes'].square(3), state['shapes'].__file__.endswith('__init__.py'))")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "state.pkl")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["90", "True"]
    assert meta["environment"]["local_code"][0]["files"] == [
        "shapes/__init__.py", "shapes/area.py", "shapes/units.py"]


def test_a_module_the_cell_imports_itself_ships_and_a_missing_optional_one_does_not(tmp_path):
    write_files(tmp_path / "nb")
    source = ("try:\n    import not_installed_anywhere\nexcept ImportError:\n    pass\n"
              "import helper\ny = helper.triple(n)")
    sys.path.insert(0, str(tmp_path / "nb"))
    try:
        namespace = {"n": 2}
        exec(source, namespace)
        meta, _ = capture("c", source, namespace, parse_fields("n:int", "--inputs"),
                          parse_fields("y", "--outputs"), {"n": 2})
    finally:
        sys.path.remove(str(tmp_path / "nb"))
        del sys.modules["helper"]
    assert [c["module"] for c in meta["environment"]["local_code"]] == ["helper"]
    assert meta["environment"]["local_code"][0]["files"] == ["helper.py"]


def test_a_package_holding_big_data_is_refused_before_it_is_read(tmp_path):
    package = tmp_path / "nb" / "heavy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def f(v):\n    return v\n")
    with open(package / "weights.bin", "wb") as f:  # sparse: no disk used, nothing to read
        f.truncate(65 * 1024 * 1024)
    sys.path.insert(0, str(tmp_path / "nb"))
    try:
        import heavy  # noqa: F401 - as the notebook imports it

        namespace = {"heavy": sys.modules["heavy"], "v": 1, "w": 1}
        with pytest.raises(InvalidInput, match=r"module `heavy`, which is local code of 65 MB"):
            capture("c", "w = heavy.f(v)", namespace, parse_fields("v:int", "--inputs"),
                    parse_fields("w", "--outputs"), {"v": 1})
    finally:
        sys.path.remove(str(tmp_path / "nb"))
        del sys.modules["heavy"]


def test_docker_instances_import_the_shipped_code(kernel, service, engine):  # noqa: F811
    kernel.ok("import helper\nimport shapes\nn = 2")
    kernel.ok(CELL.replace("pin local", "pin local-docker"))
    checkpoint = service.client.request("GET", "/checkpoints/local-docker")
    try:
        called = serve_and_call(kernel, service, "local-docker",
                                "--checkpoint local-docker --runtime docker --timeout 170",
                                "n=4")
        assert called == "{'y': 12, 'z': 160}"
    finally:
        wait_for(lambda: not engine.containers.list(all=True, filters={
            "label": "jupyter-deploy.node=local-docker"}), timeout=30,
            message="the node's containers to go")
        for image in engine.images.list(filters={
                "label": f"jupyter-deploy.checkpoint={checkpoint['id']}"}):
            engine.images.remove(image.id, force=True)
