"""The Deploy panel and the Deploy cell button in a real JupyterLab, driven through Chromium:
the quickstart's predict cell deployed from the notebook, watched to Healthy, called, routed
by an alias, and deleted."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from .conftest import TIMINGS

DOCS = Path(__file__).resolve().parents[2] / "docs"
PREDICT = "%%deploy pin predict --inputs x1"
SHOWN_GATEWAY = "https://models.example.org"  # the gateway URL setting: what users are shown


def test_the_wheel_ships_the_extension_enabled(wheel_venv):
    listed = subprocess.run([str(wheel_venv / "bin" / "jupyter"), "labextension", "list"],
                            capture_output=True, text=True, timeout=120)
    text = listed.stdout + listed.stderr
    assert re.search(r"jupyterlab-deploy v\S+ .*enabled.*OK", text), text


def node_row(page, name: str):
    return page.locator(f".jp-deploy-panel li[data-node='{name}']")


def run_cells_above_predict(page) -> None:
    """Select the predict cell and run everything above it, as the reader would."""
    cell = page.locator(".jp-CodeCell", has_text=PREDICT)
    cell.locator(".jp-InputPrompt").click()
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-above')")
    above = page.locator(".jp-CodeCell", has_text="x1, x2 = 4.0, 1.5").locator(".jp-InputPrompt")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)", arg=above.element_handle(), timeout=90_000)
    cell.locator(".jp-InputPrompt").click()


def deploy_cell(page) -> None:
    """Deploy cell from the toolbar: the dialog is pre-filled from the cell; deploy it."""
    page.locator(".jp-NotebookPanel-toolbar [data-command='deploy:deploy-cell']").click()
    dialog = page.locator(".jp-Dialog")
    inputs = dialog.locator("input[name=inputs]")
    inputs.wait_for()
    assert inputs.input_value() == "x1:float,x2:float"
    assert dialog.locator("input[name=outputs]").input_value() == "prediction"
    assert dialog.locator("input[name=checkpoint]").input_value() == "predict"
    dialog.locator("input[name=node]").fill("predictor")
    dialog.locator("input[name=max]").fill("2")
    dialog.locator("button", has_text="Deploy").click()
    ready = page.locator(".jp-Dialog .jp-deploy-ready")
    ready.wait_for(timeout=120_000)
    assert "/v1/nodes/predictor:execute" in ready.text_content()
    page.locator(".jp-Dialog button", has_text="Close").click()


def close_key_dialog(page) -> str:
    """A key is shown once, in a dialog, when its node or alias is made."""
    key = page.locator(".jp-Dialog input.jp-deploy-key")
    key.wait_for()
    value = key.input_value()
    assert len(value) > 16
    page.locator(".jp-Dialog button", has_text="Close").click()
    return value


def until_counted(lab, node: str, key: str, value) -> None:
    """Call the node through the gateway until its request-rate sparkline shows traffic."""
    gateway = lab.api("GET", "")["gateway_url"]
    deadline = time.monotonic() + 30
    def rate() -> float:
        text = value.text_content().split()[0]  # "2.50 req/s", or "–" before two samples
        return float(text) if text[0].isdigit() else 0.0

    while rate() <= 0:
        assert time.monotonic() < deadline, f"no traffic in the sparkline: {value.text_content()}"
        request = urllib.request.Request(
            f"{gateway}/v1/nodes/{node}:execute", method="POST",
            data=json.dumps({"input": {"x1": 1.0, "x2": 2.0}}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        time.sleep(0.1)  # a steady trickle of traffic, sampled once a second


def screenshots(page, panel) -> None:
    """The panel in the light and the dark theme, widened, forms folded, for the README."""
    opened = panel.locator("details[open] > summary")
    while opened.count():
        opened.first.click()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + 1, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 180, box["y"] + 300, steps=5)
    page.mouse.up()
    panel.evaluate("el => el.scrollTo(0, 0)")
    DOCS.mkdir(exist_ok=True)
    panel.screenshot(path=str(DOCS / "panel-light.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.locator("#jupyterlab-splash").wait_for(state="detached")  # the theme's splash
    page.wait_for_function(  # the dark stylesheet has painted the panel
        "() => getComputedStyle(document.querySelector('.jp-deploy-panel')).backgroundColor"
        " !== 'rgb(255, 255, 255)'")
    panel.screenshot(path=str(DOCS / "panel-dark.png"))


def test_deploy_a_cell_and_drive_it_from_the_panel(page, lab):
    started = time.monotonic()
    lab.api("PUT", "jupyterlab-deploy:plugin", {"raw": json.dumps(
        {"gatewayUrl": SHOWN_GATEWAY, "sparklineRefresh": 1})}, base="/lab/api/settings/")
    page.goto(f"{lab.url}/lab/tree/quickstart.ipynb?token={lab.token}")
    page.locator(".jp-CodeCell", has_text=PREDICT).wait_for(timeout=60_000)
    page.wait_for_function("() => window.jupyterapp && document.querySelector("
                           "'.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator"
                           "[data-status=\"idle\"]')", timeout=60_000)
    run_cells_above_predict(page)
    page.locator(".jp-CodeCell", has_text=PREDICT).locator(".jp-InputPrompt").click(
        button="right")
    page.locator(".lm-Menu .lm-Menu-itemLabel", has_text="Deploy cell").wait_for()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")  # the command palette
    page.locator(".lm-CommandPalette-input").fill("Deploy cell")
    page.locator(".lm-CommandPalette-item", has_text="Deploy cell").wait_for()
    page.keyboard.press("Escape")
    page.locator(".jp-CodeCell", has_text=PREDICT).locator(".jp-InputPrompt").click()
    deploy_cell(page)

    # the panel: live statuses, no refresh
    page.locator(".jp-SideBar [data-id='jupyterlab-deploy-panel']").click()
    panel = page.locator(".jp-deploy-panel")
    row = node_row(page, "predictor")
    row.locator(".jp-deploy-row .jp-deploy-badge", has_text="Healthy").wait_for()
    assert row.locator(".jp-deploy-instances .jp-deploy-badge").first.text_content() == "Healthy"
    checkpoint = panel.locator("li[data-checkpoint='predict']")
    assert "x1: float" in checkpoint.text_content()

    # a test request, pre-filled with the pin-time example
    row.locator("button.jp-deploy-name").click()
    editor = row.locator("textarea.jp-deploy-input")
    page.wait_for_function("el => el.value.includes('x1')", arg=editor.element_handle())
    row.locator("button.jp-deploy-execute").click()
    response = row.locator(".jp-deploy-response")
    page.wait_for_function("el => el.textContent.includes('prediction')",
                           arg=response.element_handle())
    assert f"{SHOWN_GATEWAY}/v1/nodes/predictor:execute" in row.locator(
        ".jp-deploy-curl").text_content()
    # the same call in the Open Inference Protocol, with curl and with tritonclient
    assert f"{SHOWN_GATEWAY}/v2/models/predictor/infer" in row.locator(
        ".jp-deploy-oip-curl").text_content()
    assert "tritonclient.http" in row.locator(".jp-deploy-tritonclient").text_content()
    assert panel.locator(".jp-deploy-gateway").text_content() == f"Gateway: {SHOWN_GATEWAY}"
    row.locator("button.jp-deploy-tab-logs").click()
    page.wait_for_function("el => el.textContent.length > 0",
                           arg=row.locator(".jp-deploy-logs").element_handle())

    # sparklines, scale, suspend and resume
    row.locator("button.jp-deploy-tab-metrics").click()
    row.locator(".jp-deploy-sparkline-value", has_text="req/s").first.wait_for()
    row.locator("button", has_text="Scale").click()
    page.locator(".jp-Dialog input[name=max]").fill("3")
    page.locator(".jp-Dialog button", has_text="Scale").click()
    row.locator(".jp-deploy-meta", has_text="1..3").wait_for()
    row.locator("button", has_text="Suspend").click()
    row.locator(".jp-deploy-muted", has_text="suspended").wait_for()
    row.locator("button", has_text="Resume").click()
    row.locator(".jp-deploy-instances .jp-deploy-badge", has_text="Healthy").wait_for(
        timeout=60_000)
    assert lab.api("GET", "nodes/predictor")["max"] == 3

    # a second node from the panel, then an alias split across both
    create = panel.locator(".jp-deploy-section-nodes details.jp-deploy-create")
    create.locator("summary").click()
    create.locator("input[name=node]").fill("predictor-b")
    create.locator("input[name=checkpoint]").fill("predict")
    create.locator("button", has_text="Create").click()
    key = close_key_dialog(page)
    second = node_row(page, "predictor-b")
    second.locator(".jp-deploy-row .jp-deploy-badge", has_text="Healthy").wait_for(
        timeout=60_000)
    second.locator("button.jp-deploy-name").click()
    second.locator("button.jp-deploy-tab-metrics").click()
    until_counted(lab, "predictor-b", key, second.locator(".jp-deploy-sparkline-value").first)
    row.locator("button.jp-deploy-name").click()  # fold the first node's tabs
    aliases = panel.locator(".jp-deploy-section-aliases")
    aliases.locator("summary").click()
    aliases.locator("input[name=alias]").fill("stable")
    aliases.locator("input[name=alias-node]").fill("predictor")
    aliases.locator("button", has_text="Add").click()
    close_key_dialog(page)
    alias = aliases.locator("li[data-alias='stable']")
    alias.locator(".jp-deploy-bar", has_text="predictor 100%").wait_for()
    alias.locator("button.jp-deploy-edit").click()
    alias.locator("button", has_text="Add node").click()
    rows = alias.locator(".jp-deploy-weight-row")
    rows.nth(1).locator("select").select_option("predictor-b")
    rows.nth(1).locator("input[name=weight]").fill("30")
    assert "sum to 130" in alias.locator(".jp-deploy-validation").text_content()
    assert alias.locator("button.jp-deploy-save").is_disabled()
    rows.nth(0).locator("input[name=weight]").fill("70")
    alias.locator("button.jp-deploy-save").click()
    alias.locator(".jp-deploy-bar", has_text="predictor-b 30%").wait_for()
    assert lab.api("GET", "aliases/stable")["nodes"] == {"predictor": 70, "predictor-b": 30}

    screenshots(page, panel)

    # an error from the API is shown in the panel: the alias still routes to predictor-b
    node_row(page, "predictor-b").locator("button.jp-deploy-delete").click()
    page.locator(".jp-Dialog button.jp-mod-warn").click()
    refused = panel.locator(".jp-deploy-section-nodes .jp-deploy-error")
    refused.filter(has_text="alias 'stable' routes to node 'predictor-b'").wait_for()
    # remove the alias, then delete the node, each confirmed
    alias.locator("button", has_text="Delete").click()
    page.locator(".jp-Dialog button.jp-mod-warn").click()
    alias.wait_for(state="detached")
    for name in ("predictor", "predictor-b"):
        if node_row(page, name).count():
            node_row(page, name).locator("button.jp-deploy-delete").click()
            page.locator(".jp-Dialog button.jp-mod-warn").click()
            node_row(page, name).wait_for(state="detached", timeout=60_000)
    assert lab.api("GET", "nodes")["nodes"] == []
    TIMINGS["panel test"] = time.monotonic() - started
