"""Instances' own Prometheus metrics, scraped and labelled with `node_id` and `instance_id`.

A node with telemetry gives each instance a telemetry URL; `scrape(targets)` fetches them
all and merges the families, so the result can be appended to any Prometheus text.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from ..http11 import ClientProtocol

SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?(\s.*)\Z")
LABEL_NAME = re.compile(r'(^|,)\s*(node_id|instance_id)=')
OURS = ("node_id", "instance_id")


async def fetch(url: str, timeout_s: float) -> str:
    """GET a Prometheus text page over HTTP/1.1 on loopback."""
    parts = urlsplit(url)
    async with asyncio.timeout(timeout_s):
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: ClientProtocol(8 << 20), parts.hostname, parts.port or 80)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            head = f"GET {path or '/'} HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n\r\n"
            status, _, body = await connection.request([head.encode()])
        finally:
            connection.close()
    if status != 200:
        raise OSError(f"{url} answered {status}")
    return body.decode("utf-8", "replace")


def relabel(text: str, labels: dict[str, str]) -> dict[str, list[str]]:
    """The page's families ({name: lines}) with `labels` on every sample. An instance's own
    `node_id`/`instance_id` labels are kept as `exported_node_id`/`exported_instance_id`."""
    ours = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    families: dict[str, list[str]] = {}
    family = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            words = line.split(None, 3)
            if len(words) >= 3 and words[1] in ("HELP", "TYPE"):
                family = words[2]
                families.setdefault(family, []).append(line)
            continue
        match = SAMPLE.match(line)
        if match is None:
            continue
        name, existing, rest = match.groups()
        if not family or not name.startswith(family):
            family = name
        inner = (existing or "{}")[1:-1].strip()
        inner = LABEL_NAME.sub(lambda m: f"{m.group(1)}exported_{m.group(2)}=", inner)
        joined = f"{ours},{inner}" if inner else ours
        families.setdefault(family, []).append(f"{name}{{{joined}}}{rest}")
    return families


async def scrape(targets: list[tuple[str, str, str]], timeout_s: float = 2.0) -> str:
    """Every target's metrics, merged: (node, instance, telemetry URL) each. A target that
    does not answer is left out (its `up` is the supervisor's business)."""
    pages = await asyncio.gather(*(fetch(url, timeout_s) for _, _, url in targets),
                                 return_exceptions=True)
    merged: dict[str, list[str]] = {}
    for (node, instance, _), page in zip(targets, pages):
        if isinstance(page, BaseException):
            continue
        for family, lines in relabel(page, {"node_id": node, "instance_id": instance}).items():
            known = merged.setdefault(family, [])
            known.extend(line for line in lines if not line.startswith("#") or line not in known)
    return "".join(f"{line}\n" for lines in merged.values() for line in lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
