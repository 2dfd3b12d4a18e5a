"""`%%deploy pin NAME ... --batch` and `%deploy node create ... --batch-size` in a real IPython
kernel, against the session's standalone service (issue 18)."""

from __future__ import annotations

import pytest
from jupyter_client.manager import start_new_kernel

from .test_magics import Kernel


@pytest.fixture(scope="module")
def kernel(service, tmp_path_factory):
    manager, client = start_new_kernel(kernel_name="python3", env=service.kernel_env,
                                       cwd=str(tmp_path_factory.mktemp("kernel")))
    try:
        running = Kernel(client)
        running.ok("%load_ext jupyter_deploy\nimport numpy as np\n"
                   "w = np.eye(3) * 2\nx = np.ones((1, 3))")
        yield running
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_batched_pin_deploys_as_a_batching_node(kernel, service):
    kernel.ok("%%deploy pin doubler --inputs x:ndarray[float64,(-1,3)] --outputs y --batch\n"
              "y = x @ w")
    assert service.client.request("GET", "/checkpoints/doubler")["batch"] is True
    kernel.ok("%deploy node create doubler-node --checkpoint doubler --batch-size 16 "
              "--batch-wait-ms 2")
    try:
        assert service.client.node("doubler-node")["batch"] == {"max_size": 16,
                                                                "max_wait_ms": 2}
        assert kernel.ok("%deploy call doubler-node x=[[1,2,3]]").value == \
            "{'y': [[2.0, 4.0, 6.0]]}"
    finally:
        service.client.delete_node("doubler-node")


def test_a_cell_that_is_not_row_wise_is_not_pinned_with_batch(kernel, service):
    result = kernel.run("%%deploy pin summer --inputs x:ndarray[float64,(-1,3)] --outputs y "
                        "--batch\ny = x * len(x)")
    assert "UsageError" in result.error
    assert "did not give output `y` of the example twice" in result.error
    result = kernel.run("%%deploy pin plain --inputs x:ndarray[float64,(-1,3)] --outputs y\n"
                        "y = x * len(x)")
    assert not result.error
    result = kernel.run("%deploy node create plain-node --checkpoint plain --batch")
    assert "batch needs a checkpoint pinned with --batch" in result.error
