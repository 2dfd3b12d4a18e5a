"""`jupyter deploy project ...` and `--project NAME` as a user runs them (issue 19)."""

from __future__ import annotations

from jupyter_deploy.client.projects import in_project, take_project

from ..conftest import checkpoint_body
from .test_cli import jupyter_deploy


def test_take_project_anywhere_in_the_words():
    assert take_project(["node", "list", "--project", "team"]) == (["node", "list"], "team")
    assert take_project(["--project=team", "call", "x", "a=1"]) == (["call", "x", "a=1"],
                                                                     "team")
    assert take_project(["node", "list"]) == (["node", "list"], None)


def test_projects_from_the_command_line(service, tmp_path):
    def deploy(*args: str):
        return jupyter_deploy(*args, env=service.env, cwd=tmp_path)

    created = deploy("project", "create", "cli-team")
    assert (created.returncode, created.stdout) == (0, "Project cli-team created.\n")
    listed = deploy("project", "list").stdout
    assert "default" in listed and "cli-team                 admin    shared" in listed
    in_project(service.client, "cli-team").add_checkpoint(
        checkpoint_body("doubler", "y = x * 2", "x:int", "y", x=1))
    quota = deploy("project", "quota", "cli-team", "instances=0", "memory=none")
    assert "quotas: instances=0, memory=unlimited" in quota.stdout, quota.stderr
    refused = deploy("node", "create", "big", "--checkpoint", "doubler", "--min", "0",
                     "--no-wait", "--project", "cli-team")
    assert refused.returncode == 1
    assert "project 'cli-team' would use 1 instances, over its quota of 0" in refused.stderr
    assert "token" not in refused.stderr  # a quota, not a refused token
    assert deploy("node", "list", "--project", "cli-team").stdout == "No nodes.\n"  # none made
    member = deploy("project", "member", "cli-team", "group", "analysts", "viewer")
    assert "  group analysts: viewer" in member.stdout
    events = deploy("project", "events", "cli-team").stdout.splitlines()
    assert [line.split()[2:4] for line in events] == [
        ["default", "created"], ["default", "pinned"], ["default", "set"],
        ["default", "made"]]
    assert deploy("project", "delete", "cli-team").returncode == 0
    missing = deploy("node", "list", "--project", "cli-team")
    assert (missing.returncode, missing.stderr) == (1, "jupyter deploy: no project "
                                                       "'cli-team'\n")
