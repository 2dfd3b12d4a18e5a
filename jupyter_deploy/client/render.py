"""Plain-text views shared by the magics and the CLI."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from typing import Any

NODE_MIME = "application/vnd.jupyter-deploy.node+json"


def fields(items: list[dict[str, str]]) -> str:
    return ", ".join(f"{f['name']}:{f['type']}" for f in items) or "(none)"


def checkpoint_pinned(checkpoint: dict[str, Any]) -> str:
    environment = checkpoint["environment"]
    requires = ", ".join(f"{r['distribution']}=={r['version']}" for r in environment["requirements"])
    return "\n".join([
        f"Pinned checkpoint {checkpoint['name']}@{checkpoint['version']} (id {checkpoint['id']})",
        f"  inputs:  {fields(checkpoint['inputs'])}",
        f"  outputs: {fields(checkpoint['outputs'])}",
        f"  state:   {', '.join(checkpoint['state']) or '(none)'}",
        f"  python {environment['python']}; requires: {requires or '(standard library only)'}",
    ])


def checkpoint_table(checkpoints: list[dict[str, Any]]) -> str:
    if not checkpoints:
        return "No checkpoints."
    rows = [("CHECKPOINT", "ID", "INPUTS", "OUTPUTS")]
    rows += [(f"{c['name']}@{c['version']}", c["id"], fields(c["inputs"]), fields(c["outputs"]))
             for c in checkpoints]
    return _table(rows)


def node_table(nodes: list[dict[str, Any]]) -> str:
    if not nodes:
        return "No nodes."
    rows = [("NODE", "STATUS", "INSTANCES", "CHECKPOINT", "ENDPOINT")]
    for n in nodes:
        healthy = sum(1 for i in n["instances"] if i["status"] == "Healthy")
        rows.append((n["name"], n["status"], f"{healthy}/{n['min']}..{n['max']}",
                     n["checkpoint"] or n.get("image", ""), n["endpoint"]))
    return _table(rows)


def alias_table(aliases: list[dict[str, Any]]) -> str:
    if not aliases:
        return "No aliases."
    rows = [("ALIAS", "ROUTING", "ACCESS", "ENDPOINT")]
    for a in aliases:
        routing = " | ".join(f"{r['node']} {r['weight']}% ({r['status']})" for r in a["routing"])
        if a["shadow"]:
            routing += f" | shadow {a['shadow']['node']} {a['shadow']['percent']:g}%"
        rows.append((a["name"], routing, "public" if a["public"] else "key", a["endpoint"]))
    return _table(rows)


def alias_set(alias: dict[str, Any], key: str | None) -> str:
    lines = [alias_table([alias])]
    if key:
        lines.append(f"key: {key}   (shown once: keep it)")
    return "\n".join(lines)


def node_status(node: dict[str, Any]) -> str:
    suspended = ", suspended" if node["suspended"] else ""
    lines = [f"{node['name']}: {node['status']} (instances {node['min']}..{node['max']}, "
             f"{made_from(node)}, runtime {node['runtime']}{suspended})",
             f"  endpoint: {node['endpoint']}"]
    lines += replay_lines(node)
    rows = [("  INSTANCE", "STATUS", "PID", "ADDRESS", "DETAIL")]
    for i in node["instances"]:
        address = f"{i['host']}:{i['port']}" if i["port"] else "-"
        rows.append((f"  {i['id']}", i["status"], str(i["pid"] or "-"), address, i["message"]))
    lines.append(_table(rows) if node["instances"] else "  no instances")
    return "\n".join(lines)


def replay_lines(node: dict[str, Any]) -> list[str]:
    """The latest replay check and the capture rule of a node, if any."""
    lines = []
    replay = node.get("replay")
    if replay:
        when = time.strftime("%H:%M:%S", time.localtime(replay["checked_at"]))
        detail = replay.get("reason") or replay["diff"]
        lines.append(f"  replay:   {replay['status']} ({replay['checkpoint']} at {when}"
                     f"{', strict' if node.get('strict') else ''})")
        lines += [f"    {line}" for line in detail.splitlines()]
    if node.get("capture"):
        lines.append(f"  capture:  {node['capture']['percent']:g}% of the requests, the last "
                     f"{node['capture']['limit']} kept (%deploy requests {node['name']})")
    return lines


def curl_example(endpoint: str, key: str | None, example: dict[str, Any] | None) -> str:
    """A curl command line; `key` may be a shell variable (`$NODE_KEY`), or None (public)."""
    body = json.dumps({"input": example or {}})
    return (f"curl {auth_option(key)}-H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)} {endpoint}")


def grpcurl_example(address: str, method: str, message: str, key: str | None,
                    alias: str | None = None) -> str:
    """A grpcurl command line calling `method` with `message` (protobuf JSON)."""
    options = auth_option(key).replace("Authorization", "authorization")
    if alias is not None:
        options += f"-H {shlex.quote('x-node-alias: ' + alias)} "
    return f"grpcurl -plaintext {options}-d {shlex.quote(message)} {address} {method}"


def auth_option(key: str | None) -> str:
    if key is None:
        return ""
    if key.startswith("$"):  # left for the shell to expand
        return f'-H "Authorization: Bearer {key}" '
    return f"-H {shlex.quote('Authorization: Bearer ' + key)} "


def node_created(node: dict[str, Any], key: str, example: dict[str, Any] | None) -> str:
    made = f"Node {node['name']} is {node['status']} ({made_from(node)}).\n"
    if node.get("image"):
        gateway = node["endpoint"].split("/v1/")[0]
        return made + "\n".join([
            f"  endpoint: {node['endpoint']}PATH  (or any path with x-node-id: {node['name']})",
            f"  key:      {key}   (shown once: keep it)",
            f"  try:      curl {auth_option(key)}-H 'x-node-id: {node['name']}' {gateway}/",
        ])
    return made + how_to_call(node["endpoint"], key, example, "   (shown once: keep it)")


def made_from(node: dict[str, Any]) -> str:
    """`checkpoint NAME@V` or `image IMAGE`."""
    if node.get("image"):
        return f"image {node['image']}"
    return f"checkpoint {node['checkpoint']}"


def how_to_call(endpoint: str, key: str, example: dict[str, Any] | None, note: str = "") -> str:
    return "\n".join([
        f"  endpoint: {endpoint}",
        f"  key:      {key}{note}",
        f"  try:      {curl_example(endpoint, key, example)}",
        f"  docs:     {endpoint.removesuffix(':execute')}/docs",
    ])


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows)
