"""`--project NAME` on every verb of the magics and the CLI, and `jupyter deploy project ...`
(issue 19): the caller's projects, their members, quotas and audit."""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

from .api import DeployClient, _quote
from .commands import CommandError

ROLES = ("viewer", "editor", "admin")
QUOTAS = ("instances", "memory", "cpus", "gpus", "disk")


def take_project(words: list[str]) -> tuple[list[str], str | None]:
    """The command's words without `--project NAME` (or `--project=NAME`), and NAME."""
    rest, project, index = [], None, 0
    while index < len(words):
        word = words[index]
        if word == "--project" and index + 1 < len(words):
            project, index = words[index + 1], index + 2
            continue
        if word.startswith("--project="):
            project = word.partition("=")[2]
        else:
            rest.append(word)
        index += 1
    return rest, project


def in_project(client: DeployClient, project: str | None) -> DeployClient:
    """The client acting in `project` (itself when None)."""
    if project is None:
        return client
    scoped = copy.copy(client)
    scoped.project = project
    return scoped


def add_project_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """`project list | create | show | delete | member | quota | events`."""
    project = sub.add_parser("project", help="projects: members with roles, quotas, the audit"
                             ).add_subparsers(dest="action", required=True,
                                              parser_class=parser_class)
    project.add_parser("list", help="your projects, with your role")
    for verb in ("create", "show", "delete", "events"):
        project.add_parser(verb).add_argument("project")
    member = project.add_parser("member", help="give a user or group a role (none: remove)")
    member.add_argument("project")
    member.add_argument("kind", choices=("user", "group"))
    member.add_argument("name")
    member.add_argument("role", choices=(*ROLES, "none"))
    quota = project.add_parser("quota", help="set quotas: instances=4 memory=8192 (MB) "
                               "cpus=4 gpus=0 disk=1024 (MB); none: unlimited")
    quota.add_argument("project")
    quota.add_argument("quotas", nargs="+", metavar="NAME=VALUE")


def run_project_command(client: DeployClient, args: argparse.Namespace) -> None:
    """Run a parsed `project ...` command and print what it gives."""
    if args.action == "list":
        for item in client.request("GET", "/projects")["projects"]:
            print(f"{item['name']:<24} {item['role']:<8} "
                  f"{'personal' if item['personal'] else 'shared'}")
        return
    path = f"/projects/{_quote(args.project)}"
    if args.action == "create":
        print(f"Project {client.request('POST', '/projects', {'name': args.project})['name']}"
              " created.")
    elif args.action == "delete":
        client.request("DELETE", path)
        print(f"Project {args.project} deleted.")
    elif args.action == "events":
        for event in client.request("GET", f"{path}/events")["events"]:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["time"]))
            print(f"{when}  {event['user']:<16} {event['action']:<14} {event['target']}")
    else:
        if args.action == "member":
            where = f"{path}/members/{args.kind}/{_quote(args.name)}"
            if args.role == "none":
                client.request("DELETE", where)
            else:
                client.request("PUT", where, {"role": args.role})
        elif args.action == "quota":
            client.request("PUT", f"{path}/quotas", _quotas(args.quotas))
        show(client.request("GET", path))


def _quotas(pairs: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs as the quotas body (none: null)."""
    body: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            body[name] = None if value == "none" else float(value) if "." in value else \
                int(value)
        except ValueError:
            raise CommandError(f"quota {pair!r}: NAME=NUMBER or NAME=none") from None
    return body


def show(project: dict[str, Any]) -> None:
    """A project's members and quotas."""
    print(f"Project {project['name']} (you: {project['role']})")
    for member in project["members"]:
        print(f"  {member['kind']} {member['name']}: {member['role']}")
    quotas = ", ".join(f"{k}={'unlimited' if v is None else f'{v:g}'}"
                       for k, v in project["quotas"].items())
    print(f"  quotas: {quotas}")
