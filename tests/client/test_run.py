"""`jupyter deploy run` on notebooks that clean up after themselves or fail half-way (issue 15,
items 7 and 11)."""

from __future__ import annotations

from pathlib import Path

import nbformat

from .test_cli import jupyter_deploy

PIN = "%%deploy pin {name} --inputs x:int --outputs y\ny = x + 1"


def notebook(path: Path, *cells: str) -> Path:
    """A notebook of these code cells, with a kernelspec so that it runs headless."""
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}
    book.cells = [nbformat.v4.new_code_cell(source) for source in
                  ("%load_ext jupyter_deploy", "x = 1", *cells)]
    nbformat.write(book, path)
    return path


def node_names(service) -> set[str]:
    return {node["name"] for node in service.client.nodes()}


def test_run_of_a_notebook_that_deletes_its_node(service, tmp_path):
    path = notebook(tmp_path / "tidy.ipynb", PIN.format(name="tidy"),
                    "%deploy node create tidy-kept --checkpoint tidy",
                    "%deploy node create tidy-gone --checkpoint tidy",
                    "%deploy node delete tidy-gone")
    try:
        done = jupyter_deploy("run", str(path), "--exit-after-run", env=service.env,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Node tidy-gone: deleted by the notebook" in done.stdout
        assert '-> 200 {"output": {"y": 2}}' in done.stdout  # tidy-kept is still called
        assert done.stdout.count("-> 200") == 1
    finally:
        service.client.delete_node("tidy-kept")


def test_failed_run_says_what_it_leaves_behind(service, tmp_path):
    path = notebook(tmp_path / "halfway.ipynb", PIN.format(name="halfway"),
                    "%deploy node create halfway-node --checkpoint halfway",
                    "raise RuntimeError('the notebook stops here')")
    try:
        done = jupyter_deploy("run", str(path), env=service.env, cwd=tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "the notebook stops here" in done.stderr
        assert "left behind: node halfway-node (Healthy)" in done.stderr
        assert "--cleanup" in done.stderr  # how not to leave it next time
        assert "halfway-node" in node_names(service)
    finally:
        service.client.delete_node("halfway-node")


def test_cleanup_deletes_what_the_run_created(service, tmp_path):
    path = notebook(tmp_path / "messy.ipynb", PIN.format(name="messy"),
                    "%deploy node create messy-node --checkpoint messy",
                    "%deploy alias set messy messy-node=100",
                    "raise RuntimeError('the notebook stops here')")
    before = node_names(service)
    done = jupyter_deploy("run", str(path), "--cleanup", env=service.env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Deleted alias messy and node messy-node, which this run created." in done.stdout
    assert node_names(service) == before
    assert "messy" not in {alias["name"] for alias in service.client.aliases()}


def test_run_of_a_missing_notebook_is_a_clear_error(service, tmp_path):
    done = jupyter_deploy("run", "nowhere.ipynb", env=service.env, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, "jupyter deploy: no notebook at nowhere.ipynb\n")
