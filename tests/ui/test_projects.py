"""Projects in the console, in a real JupyterLab through Chromium (issue 19): the toolbar's
picker shows each project's nodes only there, the audit names the user on every row, and an
admin adds a member from the panel."""

from __future__ import annotations

import contextlib
import time

import pytest

from ..conftest import checkpoint_body, wait_for
from ..control.test_api import ADDER
from .conftest import TIMINGS
from .test_panel import choose, node_row, type_in


def open_panel(page, lab) -> None:
    """The Lab with a layout of its own and the Deploy panel shown."""
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=60_000)
    panel = page.locator(".jp-deploy-panel")
    if not panel.is_visible():  # the workspace may have it open already: a click would close it
        page.locator(".jp-SideBar [data-id='jupyterlab-deploy-panel']").click()
    panel.wait_for()


def pick(page, project: str) -> None:
    """Pick a project in the toolbar; the summary then names it."""
    choose(page.locator(".jp-deploy-project-picker jp-select"), project)
    page.locator(".jp-deploy-summary", has_text=f"Project {project}").wait_for()


def sections(page, *names: str) -> None:
    """Open the panel's sections (Members and quotas, Audit start closed)."""
    for name in names:
        details = page.locator(f".jp-deploy-section-{name}")
        if details.get_attribute("open") is None:
            details.locator("summary").first.click()


@pytest.mark.timeout(300)
def test_a_shared_project_in_the_picker_audit_and_members(page, lab, shots):
    started = time.monotonic()
    assert lab.api("POST", "projects", {"name": "team"})["role"] == "admin"
    try:
        lab.api("POST", "checkpoints?project=team", checkpoint_body("teamsum", **ADDER))
        lab.api("POST", "nodes?project=team", {"name": "team-node", "checkpoint": "teamsum"})
        open_panel(page, lab)
        options = page.locator(".jp-deploy-project-picker jp-option")
        options.nth(1).wait_for(state="attached")
        assert options.all_text_contents() == ["default (personal)", "team (admin)"]
        assert node_row(page, "team-node").count() == 0  # the personal project is shown first

        pick(page, "team")
        node_row(page, "team-node").wait_for()
        pick(page, "default")
        node_row(page, "team-node").wait_for(state="detached")
        pick(page, "team")
        node_row(page, "team-node").wait_for()

        sections(page, "audit", "members")
        audit = page.locator(".jp-deploy-audit-row")
        audit.filter(has_text="node team-node").first.wait_for()
        rows = [row.split("\t") for row in audit.evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent).join('\\t'))")]
        assert {user for _, user, _, _ in rows} == {"default"}
        assert rows[-1][2:] == ["created", "project team"]  # newest first: the project last

        members = page.locator(".jp-deploy-members")
        type_in(members.locator("[name=member]"), "alice")
        choose(members.locator("jp-select[name=new-role]"), "editor")
        members.locator(".jp-deploy-add-member").click()
        role = members.locator("li[data-member='user/alice'] jp-select[name=role]")
        role.wait_for()
        page.wait_for_function("el => el.value === 'editor'", arg=role.element_handle())
        wait_for(lambda: {"kind": "user", "name": "alice", "role": "editor"} in
                 lab.api("GET", "projects/team")["members"], timeout=10,
                 message="alice to be an editor of team")
        audit.filter(has_text="user alice").first.wait_for()
        assert "made editor" in audit.first.text_content()
        page.add_style_tag(content=".Toastify { display: none !important; }")
        page.locator(".jp-deploy-panel").screenshot(path=str(shots / "panel-project.png"))
    finally:
        with contextlib.suppress(OSError):  # not made: the test failed before
            lab.api("DELETE", "projects/team")
    TIMINGS["projects test"] = time.monotonic() - started
    assert [p["name"] for p in lab.api("GET", "projects")["projects"]] == ["default"]
    # one project again, once the panel refreshes: a quiet label, the toolbar as before
    page.locator(".jp-deploy-toolbar jp-button[title='Refresh']").click()
    page.locator(".jp-deploy-project-label", has_text="default").wait_for()
    page.locator(".jp-deploy-panel").screenshot(path=str(shots / "panel-default.png"))
