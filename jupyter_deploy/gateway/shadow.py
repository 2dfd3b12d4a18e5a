"""What an alias's shadow node answered, kept beside the primary's answers."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any


class ShadowRecord:
    """How a shadow node answered mirrored requests, next to the primary's answers."""

    def __init__(self, limit: int = 200) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=limit)
        self.counts: Counter[str] = Counter()

    def add(self, entry: dict[str, Any]) -> None:
        self.recent.append(entry)
        self.counts["requests"] += 1
        if entry["same_output"] is not None:  # None: refused or timed out, an error only
            self.counts["same_output" if entry["same_output"] else "different_output"] += 1
        if entry["status"] != 200:
            self.counts["errors"] += 1

    def to_json(self) -> dict[str, Any]:
        latencies = sorted(e["latency_ms"] for e in self.recent)
        return {
            **{k: self.counts[k] for k in ("requests", "same_output", "different_output",
                                           "errors")},
            "p50_ms": latencies[len(latencies) // 2] if latencies else None,
            "recent": list(self.recent)[-20:],
        }
