"""The deployment console in a real JupyterLab, driven through Chromium: the quickstart's
predict cell deployed from the notebook (progress in a notification, the key shown once, the
cell's metadata recording it), the node's view in the main area (copy, keyboard tabs, charts
from the service's history, instances replaced), a crash-looping node's reason, an alias
warning, the Scale check, and errors beside their controls."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..client.test_wait import fragile_checkpoint
from ..conftest import checkpoint_body, wait_for
from ..control.test_api import ADDER
from ..runtimes.test_docker import _engine
from .conftest import TIMINGS

PREDICT = "%%deploy pin predict --inputs x1"
SHOWN_GATEWAY = "https://models.example.org"  # the gateway URL setting: what users are shown


@pytest.mark.timeout(900)  # the first test carries the wheel's build and install
def test_the_wheel_ships_the_extension_enabled(wheel_venv):
    listed = subprocess.run([str(wheel_venv / "bin" / "jupyter"), "labextension", "list"],
                            capture_output=True, text=True, timeout=120)
    text = listed.stdout + listed.stderr
    assert re.search(r"jupyterlab-deploy v\S+ .*enabled.*OK", text), text


def node_row(page, name: str):
    return page.locator(f".jp-deploy-panel li[data-node='{name}']")


def node_view(page, name: str):
    return page.locator(f"#jp-deploy-node-{name}")


def type_in(field, text: str) -> None:
    """Type into a toolkit field (`jp-text-field`, `jp-number-field`): its input is inside it."""
    field.locator("input").fill(text)


def choose(field, value: str) -> None:
    """Pick `value` in a toolkit select (`jp-select`) as a user does: open it, click the option."""
    field = field.first  # by its label: the select, then what inside it carries the label too
    field.click()
    field.locator(f"jp-option[value='{value}']").click()
    # the locator anew each time: a choice can draw its row again, with a new select
    wait_for(lambda: field.evaluate("el => el.value") == value, timeout=10, interval=0.1,
             message=f"{value} to be chosen")


def run_cells_above_predict(page) -> None:
    """Select the predict cell and run everything above it, as the reader would."""
    cell = page.locator(".jp-CodeCell", has_text=PREDICT)
    cell.locator(".jp-InputPrompt").click()
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-above')")
    above = page.locator(".jp-CodeCell", has_text="x1, x2 = 4.0, 1.5").locator(".jp-InputPrompt")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)", arg=above.element_handle(), timeout=90_000)
    cell.locator(".jp-InputPrompt").click()


def close_key_dialog(page) -> str:
    """A key is shown once, in a dialog with Copy, when its node or alias is made."""
    key = page.locator(".jp-Dialog input.jp-deploy-key")
    key.wait_for(timeout=120_000)
    value = key.input_value()
    assert len(value) > 16
    page.locator(".jp-Dialog button", has_text="Close").click()
    return value


def deploy_cell(page) -> str:
    """Deploy cell from the toolbar; progress in a notification while the notebook stays
    usable; the key in its own dialog, never in the notification."""
    page.locator(".jp-NotebookPanel-toolbar [data-command='deploy:deploy-cell']").click()
    dialog = page.locator(".jp-Dialog")
    inputs = dialog.locator("input[name=inputs]")
    inputs.wait_for()
    assert inputs.input_value() == "x1:float,x2:float"
    assert dialog.locator("input[name=outputs]").input_value() == "prediction"
    assert dialog.locator("input[name=checkpoint]").input_value() == "predict"
    dialog.locator("input[name=node]").fill("predictor")
    dialog.locator("input[name=max]").fill("2")
    dialog.locator("input[name=record]").check()  # the %deploy record, as a cell below
    dialog.locator("button", has_text="Deploy").click()
    dialog.wait_for(state="detached")
    toast = page.locator(".Toastify__toast", has_text="predictor")
    toast.first.wait_for(timeout=30_000)
    key = close_key_dialog(page)
    page.locator(".Toastify__toast", has_text="Node predictor is Healthy:").first.wait_for(
        timeout=120_000)
    page.locator(".jp-CodeCell", has_text="%deploy node create predictor --checkpoint predict@"
                 ).wait_for()
    assert key not in page.locator(".Toastify").text_content()
    assert key not in page.locator(".jp-Notebook").text_content()
    return key


def execute(gateway: str, node: str, key: str, body: dict) -> int:
    request = urllib.request.Request(
        f"{gateway}/v1/nodes/{node}:execute", method="POST", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def send_traffic(gateway: str, node: str, key: str, seconds: float, rate: float) -> float:
    """About `rate` requests per second for `seconds`, one a tenth of them refused (422);
    the rate achieved."""
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        body = {"input": {"x1": "not a number", "x2": 1.0}} if sent % 10 == 9 else {
            "input": {"x1": 1.0, "x2": 2.0}}
        assert execute(gateway, node, key, body) in (200, 422)
        sent += 1
        time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    return sent / (time.monotonic() - started)


def keyboard_to_tab(page, view, label: str) -> None:
    """Move along the view's tabs with the arrow keys until `label`, then open it (Enter)."""
    tabs = view.locator(".lm-TabBar-tab[role=tab]")
    tabs.first.focus()
    for _ in range(tabs.count()):
        focused = page.evaluate("document.activeElement.textContent")
        if focused.strip() == label:
            break
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    view.locator(".lm-TabBar-tab.lm-mod-current", has_text=label).wait_for()


def open_notebook(page, lab) -> None:
    lab.api("PUT", "jupyterlab-deploy:plugin", {"raw": json.dumps(
        {"gatewayUrl": SHOWN_GATEWAY, "sparklineRefresh": 1})}, base="/lab/api/settings/")
    lab.api("PUT", "@jupyterlab/apputils-extension:notification", {"raw": json.dumps(
        {"fetchNews": "false"})}, base="/lab/api/settings/")  # no news prompt in the shots
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    page.goto(f"{lab.url}/lab/tree/quickstart.ipynb?token={lab.token}")
    page.locator(".jp-CodeCell", has_text=PREDICT).wait_for(timeout=60_000)
    page.wait_for_function("() => window.jupyterapp && document.querySelector("
                           "'.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator"
                           "[data-status=\"idle\"]')", timeout=60_000)
    page.wait_for_function(  # the session's own kernel, connected: not one shut down at start
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel;"
        " return k && k.connectionStatus === 'connected' && k.status === 'idle'; }",
        timeout=60_000)
    run_cells_above_predict(page)


def shoot(page, target, shots: Path, name: str) -> None:
    """`target` in the light theme, then in the dark one (and back), toasts hidden."""
    hidden = page.add_style_tag(content=".Toastify { display: none !important; }")
    target.screenshot(path=str(shots / f"{name}-light.png"))
    set_theme(page, "JupyterLab Dark")
    target.screenshot(path=str(shots / f"{name}-dark.png"))
    set_theme(page, "JupyterLab Light")
    hidden.evaluate("el => el.remove()")


def set_theme(page, theme: str) -> None:
    page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', "
                  f"{{theme: '{theme}'}})")
    light = "true" if "Light" in theme else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    page.locator("#jupyterlab-splash").wait_for(state="detached")
    page.wait_for_timeout(300)  # the stylesheet paints: nothing to wait on but the frame


@pytest.mark.timeout(600)
def test_deploy_a_cell_and_watch_it_in_the_console(page, lab, shots):
    started = time.monotonic()
    open_notebook(page, lab)
    key = deploy_cell(page)
    metadata = page.evaluate("window.jupyterapp.shell.currentWidget.content.activeCell"
                             ".model.getMetadata('jupyter_deploy')")
    assert metadata["node"] == "predictor" and metadata["checkpoint"] == "predict"
    assert metadata["endpoint"].endswith("/v1/nodes/predictor:execute")

    # the panel: a line per node, its readiness; the node's view in the main area
    page.locator(".jp-SideBar [data-id='jupyterlab-deploy-panel']").click()
    panel = page.locator(".jp-deploy-panel")
    row = node_row(page, "predictor")
    row.locator(".jp-deploy-badge", has_text="Healthy").wait_for()
    assert row.locator(".jp-deploy-readiness").text_content() == "1/1 ready (max 2)"
    assert "1 node · 0 unhealthy" in panel.locator(".jp-deploy-summary").text_content()
    row.locator("button.jp-deploy-name").click()
    view = node_view(page, "predictor")
    endpoint = view.locator("a.jp-deploy-endpoint")
    endpoint.wait_for()
    assert endpoint.text_content() == f"{SHOWN_GATEWAY}/v1/nodes/predictor:execute"
    view.locator("a.jp-deploy-docs-link").wait_for()
    assert view.locator("a.jp-deploy-docs-link").get_attribute("href").endswith(
        "/v1/nodes/predictor/docs")
    view.get_by_role("button", name="Copy endpoint of predictor").click()
    assert page.evaluate("navigator.clipboard.readText()") == endpoint.text_content()
    view.get_by_role("button", name="Copy curl").click()
    assert page.evaluate("navigator.clipboard.readText()").startswith("curl")

    # known traffic, then the Monitoring tab (reached by keyboard only) draws it
    gateway = lab.api("GET", "")["gateway_url"]
    rate = send_traffic(gateway, "predictor", key, seconds=12, rate=8)
    keyboard_to_tab(page, view, "Monitoring")
    chart = view.locator(".jp-deploy-chart", has_text="Requests (req/s)")
    page.wait_for_function(
        "el => Number(el.dataset.yMax) > 0 && /2xx: [0-9.]+ req\\/s now/.test(el.textContent)",
        arg=chart.element_handle(), timeout=30_000)
    y_max = float(chart.get_attribute("data-y-max"))
    peak = float(re.search(r"2xx: [0-9.]+ req/s now, ([0-9.]+) req/s at most",
                           chart.text_content())[1])
    assert 0.3 * rate < peak < 3 * rate and y_max >= peak, (rate, peak, y_max)
    errors = view.locator(".jp-deploy-chart", has_text="Errors")
    assert re.search(r"at most", errors.text_content())
    shoot(page, view, shots, "node-monitoring")

    # an instance killed: replaced, and the table keeps it with its exit code
    instance = lab.api("GET", "nodes/predictor")["instances"][0]
    os.kill(instance["pid"], signal.SIGKILL)
    keyboard_to_tab(page, view, "Instances")
    gone = view.locator(f"tr.jp-deploy-removed[data-instance='{instance['id']}']")
    gone.wait_for(timeout=30_000)
    assert "the instance exited (code -9)" in gone.text_content()
    assert "replaced" in gone.text_content()
    view.locator("tr:not(.jp-deploy-removed) .jp-deploy-badge", has_text="Healthy").wait_for(
        timeout=60_000)
    assert "1 restarts" in view.locator(".jp-deploy-instances-summary").text_content()
    shoot(page, view, shots, "node-instances")
    keyboard_to_tab(page, view, "Events")
    assert "the instance exited (code -9)" in view.locator(".jp-deploy-event-table").text_content()
    keyboard_to_tab(page, view, "Requests")
    view.locator(".jp-deploy-request-table").wait_for()

    # a crash-looping node: its reason in place, in the panel
    lab.api("POST", "checkpoints", fragile_checkpoint("broken", lab.root))
    lab.api("POST", "nodes", {"name": "broken-node", "checkpoint": "broken"})
    broken = node_row(page, "broken-node")
    broken.locator(".jp-deploy-reason", has_text="the instance exited (code 3)").wait_for(
        timeout=60_000)
    broken.locator(".jp-deploy-reason", has_text=re.compile(r"([2-9]|\d\d) restarts")).wait_for(
        timeout=60_000)
    assert broken.get_attribute("data-status") == "Unhealthy"

    # an alias made from the panel, the node picked from a list; a warning for the broken one
    aliases = panel.locator(".jp-deploy-section-aliases")
    aliases.locator("summary", has_text="Add an alias").click()
    type_in(aliases.get_by_label("Alias name"), "stable")
    choose(aliases.locator("jp-select[name=alias-node]"), "predictor")
    aliases.locator("jp-button.jp-deploy-add-alias").click()
    close_key_dialog(page)
    alias = aliases.locator("li[data-alias='stable']")
    alias.locator(".jp-deploy-bar-legend", has_text="predictor 100%").wait_for()
    assert alias.locator("a.jp-deploy-endpoint").text_content().startswith(SHOWN_GATEWAY)
    alias.get_by_role("button", name="Edit alias stable").click()
    alias.locator("jp-button", has_text="Add node").click()
    rows = alias.locator(".jp-deploy-weight-row")
    # a list open while the panel refreshes with news stays open under the pointer
    picker = rows.nth(1).locator("jp-select").first
    picker.click()
    picker.locator("jp-option[value='broken-node']").wait_for()
    lab.api("PUT", "aliases/elsewhere", {"nodes": {"predictor": 100}})
    panel.locator(".jp-deploy-section-aliases .jp-deploy-count", has_text="(2)").wait_for()
    assert picker.get_attribute("open") is not None
    picker.locator("jp-option[value='broken-node']").click()
    wait_for(lambda: picker.evaluate("el => el.value") == "broken-node", timeout=10,
             interval=0.1, message="broken-node to be chosen")
    lab.api("DELETE", "aliases/elsewhere")
    panel.locator(".jp-deploy-section-aliases .jp-deploy-count", has_text="(1)").wait_for()
    type_in(rows.nth(1).locator("[name=weight]"), "20")
    assert "sum to 120" in alias.locator(".jp-deploy-validation").text_content()
    assert alias.locator("jp-button.jp-deploy-save").get_attribute("aria-disabled") == "true"
    alias.locator("jp-button.jp-deploy-balance").click()
    type_in(rows.nth(0).locator("[name=weight]"), "80")
    type_in(rows.nth(1).locator("[name=weight]"), "20")
    alias.locator("jp-button.jp-deploy-save").click()
    alias.locator(".jp-deploy-warning",
                  has_text="broken-node gets 20% of the traffic but is Unhealthy").wait_for()

    # the Scale dialog refuses min > max before anything is sent
    row.get_by_role("button", name="Actions of predictor").click()
    page.locator(".lm-Menu-item", has_text="Scale").click()
    dialog = page.locator(".jp-Dialog")
    type_in(dialog.locator("jp-number-field[name=min]"), "5")
    type_in(dialog.locator("jp-number-field[name=max]"), "2")
    assert "the minimum (5) is more than the maximum (2)" in dialog.locator(
        ".jp-deploy-validation").text_content()
    assert dialog.locator("button.jp-mod-accept").is_disabled()
    dialog.locator("button", has_text="Cancel").click()

    panel_width(page, 250)
    shoot(page, panel, shots, "panel")

    # an error beside the control that caused it, dismissible: the alias still routes there
    broken.get_by_role("button", name="Actions of broken-node").click()
    page.locator(".lm-Menu-item", has_text="Delete").click()
    page.locator(".jp-Dialog button.jp-mod-warn").click()
    refused = broken.locator(".jp-deploy-error-shown",
                             has_text="alias 'stable' routes to node 'broken-node'")
    refused.wait_for()
    refused.get_by_role("button", name="Dismiss").click()
    refused.wait_for(state="detached")

    # a cell that raises: the failure says so, with the cell's traceback one click away
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="quickstart.ipynb").click()
    page.evaluate("window.jupyterapp.commands.execute('notebook:insert-cell-below')")
    page.evaluate("window.jupyterapp.shell.currentWidget.content.activeCell.model.sharedModel"
                  ".setSource('boom = 1 / 0')")
    page.locator(".jp-NotebookPanel-toolbar [data-command='deploy:deploy-cell']").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input[name=node]").fill("boom-node")
    dialog.locator("button", has_text="Deploy").click()
    failed = page.locator(".Toastify__toast", has_text="failed: ZeroDivisionError")
    failed.wait_for(timeout=60_000)
    failed.locator("button", has_text="Show traceback").click()
    traceback = page.locator(".jp-Dialog pre.jp-deploy-traceback")
    assert "ZeroDivisionError" in traceback.text_content()
    assert "1 / 0" in traceback.text_content()
    page.locator(".jp-Dialog button", has_text="Close").click()

    # clean up, each deletion confirmed
    alias.get_by_role("button", name="Delete alias stable").click()
    page.locator(".jp-Dialog button.jp-mod-warn").click()
    alias.wait_for(state="detached")
    for name in ("predictor", "broken-node"):
        node_row(page, name).get_by_role("button", name=f"Actions of {name}").click()
        page.locator(".lm-Menu-item", has_text="Delete").click()
        page.locator(".jp-Dialog button.jp-mod-warn").click()
        node_row(page, name).wait_for(state="detached", timeout=60_000)
    assert lab.api("GET", "nodes")["nodes"] == []
    TIMINGS["console test"] = time.monotonic() - started


def panel_width(page, width: int) -> None:
    """Drag the left area's handle until the panel is `width` px wide."""
    panel = page.locator(".jp-deploy-panel")
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    now = panel.bounding_box()["width"]
    page.mouse.move(box["x"] + 1, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 1 + (width - now), box["y"] + 300, steps=5)
    page.mouse.up()


@pytest.mark.timeout(600)
def test_a_docker_node_from_the_form_shows_its_build(page, lab, shots):
    """New node from the panel's toolbar, on the docker runtime: its image build streams into
    the node's Events; it comes up Healthy."""
    engine = _engine()
    if isinstance(engine, str):
        pytest.skip(f"no Docker engine: {engine}")
    # a checkpoint of its own (a state no run had before), so its image is built, not reused
    pinned = lab.api("POST", "checkpoints", checkpoint_body(
        "adder", **{**ADDER, "state": {"scale": time.time()}}))
    page.goto(f"{lab.url}/lab?token={lab.token}")
    panel = page.locator(".jp-deploy-panel")
    tab = page.locator(".jp-SideBar [data-id='jupyterlab-deploy-panel']")
    tab.wait_for(timeout=60_000)
    page.locator("#jupyterlab-splash").wait_for(state="detached")
    if not panel.is_visible():  # the workspace may have it open already: a click would close it
        tab.click()
    panel.locator("li[data-checkpoint='adder']").wait_for()
    panel.locator(".jp-deploy-toolbar [title='New node from a checkpoint']").click()
    dialog = page.locator(".jp-Dialog")
    type_in(dialog.get_by_label("Node name"), "adder-docker")
    choose(dialog.get_by_label("Checkpoint"), "adder")
    choose(dialog.get_by_label("Runtime"), "docker")
    type_in(dialog.get_by_label("Minimum instances"), "3")
    type_in(dialog.get_by_label("Maximum instances"), "1")
    dialog.locator("button.jp-mod-accept").click()
    assert "the minimum (3) is more than the maximum (1)" in dialog.locator(
        ".jp-deploy-validation").text_content()  # the form again, with what is wrong
    type_in(dialog.get_by_label("Minimum instances"), "1")
    dialog.locator("button.jp-mod-accept").click()
    close_key_dialog(page)
    view = node_view(page, "adder-docker")
    view.locator(".lm-TabBar-tab.lm-mod-current", has_text="Events").wait_for()
    events = view.locator(".jp-deploy-event-table")
    events.locator("td", has_text=re.compile(r"Step \d+/\d+|FROM |Successfully built")).first.wait_for(
        timeout=120_000)
    node_row(page, "adder-docker").locator(".jp-deploy-badge", has_text="Healthy").wait_for(
        timeout=180_000)
    shoot(page, view, shots, "node-events")
    node_row(page, "adder-docker").get_by_role("button", name="Actions of adder-docker").click()
    page.locator(".lm-Menu-item", has_text="Delete").click()
    page.locator(".jp-Dialog button.jp-mod-warn").click()
    node_row(page, "adder-docker").wait_for(state="detached", timeout=60_000)
    for image in engine.images.list(filters={"label": f"jupyter-deploy.checkpoint={pinned['id']}"}):
        engine.images.remove(image.id, force=True)  # the image this test built
