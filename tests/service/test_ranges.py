"""Every numeric setting a node takes has a documented range, and every range a bound
that the refusal names."""

from __future__ import annotations

from dataclasses import fields

import pytest

from jupyter_deploy.models import Autoscale, HealthCheck, InvalidInput
from jupyter_deploy.service.validation.ranges import RANGES, in_range


@pytest.mark.parametrize(("prefix", "settings"), [("health", HealthCheck()),
                                                  ("autoscale", Autoscale())])
def test_every_numeric_setting_has_a_range_holding_its_default(prefix, settings):
    for item in fields(settings):
        value = getattr(settings, item.name)
        if isinstance(value, (int, float)) and item.name != "port":  # ports: 1..65535
            assert in_range(value, f"{prefix}.{item.name}") == value


@pytest.mark.parametrize("field", sorted(RANGES))
def test_values_past_either_bound_are_refused_naming_the_bound(field):
    low, high, whole, _ = RANGES[field]
    for value in (high * 2 + 1, 2**64, float("inf"), float("nan"), True, "1"):
        with pytest.raises(InvalidInput) as info:
            in_range(value, field)
        assert info.value.field == field and str(int(high)) in info.value.message
    if low > 0:
        with pytest.raises(InvalidInput):
            in_range(low / 2 if not whole else low - 1, field)
    assert in_range(low if whole else float(low), field) == low
