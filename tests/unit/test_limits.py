"""Instance configurations against what an engine or host has."""

from __future__ import annotations

import pytest

from jupyter_deploy.models import InvalidInput, Node
from jupyter_deploy.runtimes.limits import (
    DEFAULT_CONFIGS,
    Capacity,
    check_capacity,
    engine_capacity,
    limits,
)

TWO_CPUS = Capacity(cpus=2, memory_mb=8192, where="the Docker engine", source="docker info")


def node(config: str = "", memory_mb: int = 0) -> Node:
    return Node(name="n", checkpoint_id="c", checkpoint="c@1", config=config,
                memory_mb=memory_mb)


@pytest.mark.parametrize(("case", "config", "memory_mb", "field", "message"), [
    ("no configuration", "", 0, None, ""),
    ("small fits", "small", 0, None, ""),
    ("medium: exactly the CPUs there are", "medium", 0, None, ""),
    ("large: 4 CPUs on 2", "large", 0, "config",
     "config large asks for 4 CPUs; the Docker engine has 2 CPU(s) (docker info)"),
    ("memory beyond the engine", "", 9000, "memory_mb",
     "memory_mb is 9000 MB; the Docker engine has 8192 MB (docker info)"),
    ("memory_mb overrides the configuration's", "small", 8192, None, ""),
])
def test_check_capacity(case, config, memory_mb, field, message):
    wanted = node(config, memory_mb)
    if field is None:
        check_capacity(wanted, limits(wanted, DEFAULT_CONFIGS), TWO_CPUS)
        return
    with pytest.raises(InvalidInput) as error:
        check_capacity(wanted, limits(wanted, DEFAULT_CONFIGS), TWO_CPUS)
    assert (error.value.field, error.value.message) == (field, message), case


def test_a_configuration_memory_beyond_names_the_config():
    small_host = Capacity(cpus=8, memory_mb=2048, where="this host", source="the host")
    with pytest.raises(InvalidInput) as error:
        check_capacity(node("medium"), limits(node("medium"), DEFAULT_CONFIGS), small_host)
    assert error.value.field == "config"
    assert error.value.message.startswith("config medium asks for 4096 MB of memory; this host")


def test_engine_capacity_reads_docker_info():
    info = {"NCPU": 2, "MemTotal": 3 * 2 ** 30}
    capacity = engine_capacity(info)
    assert (capacity.cpus, capacity.memory_mb) == (2, 3072)
    # an engine that does not tell its figures refuses nothing on them
    check_capacity(node("large"), limits(node("large"), DEFAULT_CONFIGS), engine_capacity({}))
