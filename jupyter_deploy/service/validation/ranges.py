"""The documented range of every numeric setting, and the size limits of free text.

A value outside its range could be stored but never run (a 1e-9 s health interval spins the
supervisor, 2**64 MB cannot be given to any instance), so it is refused with 422 naming the
field and the bound. The control API's OpenAPI document shows the same bounds.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ...models import InvalidInput

DAY_S = 86_400.0

# field: (lowest, highest, whole number?, unit). Memory and disk also take 0: no limit.
RANGES: dict[str, tuple[float, float, bool, str]] = {
    "memory_mb": (8, 1_048_576, True, "MB"),  # up to 1 TiB
    "disk_mb": (8, 16_777_216, True, "MB"),  # up to 16 TiB
    "maintenance_limit": (1, 64, True, "instances"),
    "session_timeout_s": (0.01, DAY_S, False, "s"),
    "idle_timeout_s": (0.1, DAY_S, False, "s"),
    "health.timeout_s": (0.01, 300.0, False, "s"),
    "health.interval_s": (0.01, 3600.0, False, "s"),
    "health.replace_after_s": (0.1, DAY_S, False, "s"),
    "health.fail_threshold": (1, 100, True, "checks"),
    "health.pass_threshold": (1, 100, True, "checks"),
    "autoscale.target_concurrency": (0.01, 10_000.0, False, "requests"),
    "autoscale.up_delay_s": (0.01, DAY_S, False, "s"),
    "autoscale.down_delay_s": (0.01, DAY_S, False, "s"),
}
ZERO_MEANS_NONE = {"memory_mb", "disk_mb"}

MAX_VARIABLES = 256  # environment variables (or secrets) of a node
MAX_VARIABLE_NAME = 256  # characters
MAX_VARIABLE_VALUE = 32_768  # characters; Linux refuses one argument or variable over 128 KiB
MAX_METADATA_BYTES = 4096  # an alias's metadata, as JSON


def is_whole(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def in_range(value: Any, field: str) -> Any:
    """`value` if it is a number within RANGES[field], else InvalidInput naming the bound."""
    low, high, whole, unit = RANGES[field]
    if field in ZERO_MEANS_NONE and value == 0 and is_whole(value):
        return value
    number = is_whole(value) or (not whole and isinstance(value, float) and math.isfinite(value))
    if not number or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        none = " (0: no limit)" if field in ZERO_MEANS_NONE else ""
        raise InvalidInput(f"{field} must be {kind} from {_shown(low)} to {_shown(high)} "
                           f"{unit}{none}", field=field)
    return value


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def check_text(value: str, field: str, limit: int) -> None:
    """Refuse a NUL byte (no process can be given one) or a string over `limit` characters."""
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain a NUL byte", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters long: at most {limit}",
                           field=field)


def check_metadata(metadata: Any, field: str = "metadata") -> dict[str, str]:
    """An object of strings, at most MAX_METADATA_BYTES as JSON."""
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InvalidInput(f"{field} must be an object of strings", field=field)
    size = len(json.dumps(metadata).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(f"{field} is {size} bytes as JSON: at most {MAX_METADATA_BYTES}",
                           field=field)
    return dict(metadata)


def no_nul(body: dict[str, Any]) -> None:
    """Refuse a NUL byte in any name or text of a node's settings: no process, path, header
    or image reference can carry one, so the node could never start."""
    stack: list[tuple[str, Any]] = [(str(key), value) for key, value in body.items()]
    while stack:
        field, value = stack.pop()
        if "\x00" in field:
            raise InvalidInput(f"{field} must not contain a NUL byte", field=field)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"{field} must not contain a NUL byte", field=field)
        if isinstance(value, dict):
            stack.extend((f"{field}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{field}[{i}]", item) for i, item in enumerate(value))
