"""`--project NAME` on the magics (issue 19): pin, deploy and call in a shared project."""

from __future__ import annotations

import json
import urllib.request

from jupyter_deploy.client.render import NODE_MIME

from .test_magics import kernel as kernel  # noqa: F401 - the module's own kernel


def test_magics_act_in_the_project_named(kernel, service):  # noqa: F811
    service.client.request("POST", "/projects", {"name": "mg-team"})
    kernel.ok("a, b = 1.0, 2.0")
    pinned = kernel.ok("%%deploy pin adder --inputs a:float,b:float --outputs total "
                       "--project mg-team\ntotal = a + b")
    assert pinned.stdout.startswith("Pinned checkpoint adder@1 ")
    created = kernel.ok("%deploy node create mg-adder --checkpoint adder --project mg-team")
    announcement = next(d[NODE_MIME] for d in created.data if NODE_MIME in d)
    assert announcement["endpoint"].endswith("/v1/nodes/mg-team/mg-adder:execute")
    assert kernel.ok("%deploy call mg-adder a=1 b=2 --project mg-team").value == \
        "{'total': 3.0}"
    request = urllib.request.Request(  # through the gateway workers, by the project's path
        announcement["endpoint"], data=json.dumps({"input": {"a": 2, "b": 2}}).encode(),
        headers={"Authorization": f"Bearer {announcement['key']}"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"output": {"total": 4.0}}
    assert "mg-adder" not in kernel.ok("%deploy node list").stdout  # the default project's
    assert "no node 'mg-adder'" in kernel.run("%deploy node status mg-adder").error
    kernel.ok("%deploy node delete mg-adder --project mg-team")
    assert "No nodes." in kernel.ok("%deploy node list --project mg-team").stdout
