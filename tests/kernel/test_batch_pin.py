"""`%%deploy pin NAME ... --batch` and `%deploy node create ... --batch-size` in a real IPython
kernel, against the session's standalone service (issue 18)."""

from __future__ import annotations

import pytest

from .kernels import running_kernel


@pytest.fixture(scope="module")
def kernel(service, tmp_path_factory):
    with running_kernel(service, tmp_path_factory.mktemp("kernel")) as running:
        running.ok("import numpy as np\nw = np.eye(3) * 2\nx = np.ones((1, 3))")
        yield running


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
