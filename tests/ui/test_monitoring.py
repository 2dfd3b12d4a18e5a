"""A node's Monitoring tab in a real JupyterLab: each instance's CPU and memory, as the service
samples them into the node's history, drawn as one line per instance (issue 17)."""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from ..conftest import checkpoint_body
from .conftest import TIMINGS
from .test_panel import node_row, node_view


def usage_chart(page, view, title: str, instance: str, unit: str) -> float:
    """The chart titled `title` draws a line named `instance` with a value now; its y-axis top."""
    chart = view.locator(".jp-deploy-chart", has_text=title)
    page.wait_for_function(
        "([el, label]) => Number(el.dataset.yMax) > 0 && el.querySelector("
        "'.jp-deploy-chart-summary').textContent.startsWith(label + ': ')"
        " && !/no data/.test(el.textContent)",
        arg=[chart.element_handle(), instance], timeout=30_000)
    labels = chart.locator(".u-legend .u-series .u-label").all_text_contents()
    assert instance in labels, labels
    summary = chart.locator(".jp-deploy-chart-summary").text_content()
    assert re.fullmatch(rf"{re.escape(instance)}: [0-9.]+ {re.escape(unit)} now, "
                        rf"[0-9.]+ {re.escape(unit)} at most", summary), summary
    return float(chart.get_attribute("data-y-max"))


@pytest.mark.timeout(300)
def test_the_monitoring_tab_draws_cpu_and_memory_per_instance(page, lab):
    started = time.monotonic()
    # a cell of its own: a checkpoint's id is its content's, and test_views wants ADDER's
    # checkpoint named summer
    lab.api("POST", "checkpoints", checkpoint_body("gauged", "gauge = (a + b) * scale",
                                                   "a:float,b:float", "gauge",
                                                   state={"scale": 3.0}, a=1.0, b=2.0))
    lab.api("POST", "nodes", {"name": "gauging", "checkpoint": "gauged"})
    try:
        # a workspace of its own: the layout it leaves is not the one the other tests open
        page.goto(f"{lab.url}/lab/workspaces/monitoring?reset&token={lab.token}")
        page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=60_000)
        panel = page.locator(".jp-deploy-panel")
        if not panel.is_visible():  # the workspace may have it open: a click would close it
            page.locator(".jp-SideBar [data-id='jupyterlab-deploy-panel']").click()
        node_row(page, "gauging").locator(".jp-deploy-badge", has_text="Healthy").wait_for(
            timeout=60_000)
        instance = lab.api("GET", "nodes/gauging")["instances"][0]["id"]
        node_row(page, "gauging").locator("button.jp-deploy-name").click()
        view = node_view(page, "gauging")
        view.locator(".lm-TabBar-tab", has_text="Monitoring").click()
        usage_chart(page, view, "CPU per instance", instance, "% of a core")
        memory_top = usage_chart(page, view, "Memory per instance", instance, "MB")
        assert memory_top > 5  # a Python worker with its checkpoint: tens of MB
    finally:
        with contextlib.suppress(OSError):  # not made: the test failed before
            lab.api("DELETE", "nodes/gauging")
    TIMINGS["monitoring test"] = time.monotonic() - started
