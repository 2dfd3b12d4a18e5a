"""The projects part of the control API's OpenAPI document (issue 19)."""

from __future__ import annotations

from typing import Any

from ..service.projects import KINDS, QUOTAS, RANK
from .schemas import NAME, NUMBER, STRING, Schema, nullable, obj, ref

ROLE = {"enum": list(RANK)}
PROJECT_QUERY = {"name": "project", "in": "query", "required": False, "schema": NAME,
                 "description": "the project (default: the caller's personal project)"}
PROJECT_SCHEMAS: dict[str, Schema] = {
    "Project": obj({
        "name": NAME, "personal": {"type": "boolean"}, "role": nullable(ROLE),
        "created": NUMBER, "creator": STRING,
        "members": {"type": "array", "items": obj(
            {"kind": {"enum": list(KINDS)}, "name": STRING, "role": ROLE},
            ("kind", "name", "role"))},
        "quotas": obj({name: nullable(NUMBER) for name in QUOTAS})},
        ("name", "personal", "role", "members", "quotas")),
    "ProjectCreate": obj({"name": NAME}, ("name",), closed=True),
    "Member": obj({"role": ROLE}, ("role",), closed=True),
    "Quotas": obj({name: nullable({"type": "number", "minimum": 0}) for name in QUOTAS},
                  closed=True),
    "AuditEvent": obj({"seq": {"type": "integer"}, "time": NUMBER, "user": STRING,
                       "action": STRING, "target": STRING, "message": nullable(STRING),
                       "project": NAME}, ("seq", "time", "user", "action", "target")),
}


def project_paths(api: str, op: Any, answer: Any, listing: Any) -> dict[str, dict[str, Any]]:
    """/projects and what is below it; `op`, `answer` and `listing` build operations as the
    rest of the document does."""
    project = f"{api}/projects/{{project}}"
    member = {"put": op("Give the user or group a role in the project (admin)",
                        answer(200, "the project", ref("Project")), body=ref("Member")),
              "delete": op("Take the member's role back (admin)", answer(204, "removed"))}
    return {
        f"{api}/projects": {
            "get": op("The caller's projects, each with the caller's role",
                      answer(200, "the projects", listing("projects", "Project"))),
            "post": op("Create a shared project; the caller becomes its admin",
                       answer(201, "created", ref("Project")), body=ref("ProjectCreate"))},
        project: {
            "get": op("A project: members, quotas, the caller's role",
                      answer(200, "the project", ref("Project"))),
            "delete": op("Delete the project with its aliases, nodes and checkpoints (admin)",
                         answer(204, "deleted"))},
        f"{project}/members/user/{{member}}": dict(member),
        f"{project}/members/group/{{member}}": dict(member),
        f"{project}/quotas": {"put": op(
            "Set any of the project's quotas (memory and disk in MB; null: unlimited) (admin)",
            answer(200, "the project", ref("Project")), body=ref("Quotas"))},
        f"{project}/events": {"get": op(
            "The project's audit: who did what, and when, oldest first",
            answer(200, "the events", listing("events", "AuditEvent")),
            params=[{"name": "since", "in": "query", "required": False,
                     "schema": {"type": "integer"},
                     "description": "events after this sequence number"}])},
    }
