"""Captured requests as the kernel and the terminal show them: a pandas DataFrame, a table,
or JSON lines."""

from __future__ import annotations

import json
import time
from typing import Any

from . import render
from .api import error_message

LEADING = ("time", "request_id", "instance", "status", "latency_ms")


def _columns(data: dict[str, Any], part: str) -> list[str]:
    """The declared fields of `part` ("input" or "output"), then any other the rows hold."""
    names = list(data[f"{part}s"])
    for row in data["requests"]:
        names += [n for n in (row[part] or {}) if n not in names]
    return names


def _error(row: dict[str, Any]) -> str | None:
    error = row["error"]
    if error is None:
        return None
    return error_message(error) or (error if isinstance(error, str) else json.dumps(error))


def frame(data: dict[str, Any]) -> Any:
    """One row per request: time (UTC), request_id, instance, status, latency_ms, one
    `input.NAME` column per input, one `output.NAME` column per output, error."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("%deploy requests returns a pandas DataFrame: install pandas in "
                          "this kernel's environment (pip install pandas)") from None
    inputs, outputs = _columns(data, "input"), _columns(data, "output")
    records = []
    for row in data["requests"]:
        record = {key: row[key] for key in LEADING}
        record.update({f"input.{n}": (row["input"] or {}).get(n) for n in inputs})
        record.update({f"output.{n}": (row["output"] or {}).get(n) for n in outputs})
        record["error"] = _error(row)
        if "omitted" in row:
            record["omitted"] = row["omitted"]
        records.append(record)
    columns = [*LEADING, *(f"input.{n}" for n in inputs), *(f"output.{n}" for n in outputs),
               "error"] + (["omitted"] if any("omitted" in r for r in records) else [])
    table = pd.DataFrame.from_records(records, columns=columns)
    table["time"] = pd.to_datetime(table["time"], unit="s", utc=True)
    return table


def table(data: dict[str, Any]) -> str:
    """A text table, newest last."""
    if not data["requests"]:
        return f"No captured requests for node {data['node']}" + (
            "." if data["capture"] else " (capture is off: --capture PERCENT turns it on).")
    rows = [("TIME", "REQUEST ID", "INSTANCE", "STATUS", "LATENCY MS", "INPUT",
             "OUTPUT OR ERROR")]
    for row in data["requests"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["time"]))
        result = json.dumps(row["output"]) if row["status"] == 200 else _error(row) or ""
        rows.append((when, row["request_id"] or "-", row["instance"] or "-", str(row["status"]),
                     f"{row['latency_ms']:.1f}", _clip(json.dumps(row["input"])),
                     _clip(result)))
    return render._table(rows)


def json_lines(data: dict[str, Any]) -> str:
    return "\n".join(json.dumps(row) for row in data["requests"])


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
