"""`gateway_limits`: names and numbers checked, the rest left at the defaults."""

from __future__ import annotations

import pytest

from jupyter_deploy.http.framing import Limits, check_limits


def test_given_limits_replace_the_defaults() -> None:
    limits = check_limits({"max_head": 2048, "head_timeout_s": 2.5, "max_per_client": 10.0})
    assert (limits.max_head, limits.head_timeout_s, limits.max_per_client) == (2048, 2.5, 10)
    assert limits.max_connections == Limits().max_connections


@pytest.mark.parametrize(("values", "message"), [
    ({"max_heads": 1}, "gateway_limits.max_heads is not a limit"),
    ({"max_head": 0}, "gateway_limits.max_head must be a positive whole number"),
    ({"max_head": 1.5}, "gateway_limits.max_head must be a positive whole number"),
    ({"max_head": True}, "gateway_limits.max_head must be a positive whole number"),
    ({"head_timeout_s": -1}, "gateway_limits.head_timeout_s must be a positive number of "
                             "seconds"),
    ({"stall_timeout_s": "60"}, "gateway_limits.stall_timeout_s must be a positive number"),
])
def test_bad_limits_are_refused_by_name(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_limits(values)
