"""A node's status from its instances' (the seed's rule)."""

from __future__ import annotations

import pytest

from jupyter_deploy.models import Instance, InstanceStatus, Node, NodeStatus, node_status

H, U, P = InstanceStatus.HEALTHY, InstanceStatus.UNHEALTHY, InstanceStatus.PREPARING


def instances(*statuses: InstanceStatus) -> list[Instance]:
    return [Instance(id=f"i{n}", node="n", status=s) for n, s in enumerate(statuses)]


@pytest.mark.parametrize(("case", "min", "settled", "deleting", "statuses", "status"), [
    ("new, nothing healthy yet", 1, False, False, (P,), NodeStatus.CREATED),
    ("enough healthy", 2, False, False, (H, H, P), NodeStatus.HEALTHY),
    ("more than enough", 1, True, False, (H, H), NodeStatus.HEALTHY),
    ("settled, too few healthy", 2, True, False, (H, U), NodeStatus.UNHEALTHY),
    ("unhealthy ones do not count", 1, True, False, (U, U), NodeStatus.UNHEALTHY),
    ("minimum zero, nothing running", 0, True, False, (), NodeStatus.HEALTHY),
    ("deleting wins", 1, True, True, (H,), NodeStatus.DELETING),
])
def test_node_status(case, min, settled, deleting, statuses, status):
    node = Node(name="n", checkpoint_id="c", checkpoint="c@1", min=min, settled=settled,
                deleting=deleting)
    assert node_status(node, instances(*statuses)) is status, case
