"""The product's concepts: checkpoint, node, instance, their statuses and errors."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class NodeStatus(StrEnum):
    CREATED = "Created"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    DELETING = "Deleting"


class InstanceStatus(StrEnum):
    UNDEFINED = "Undefined"
    CREATED = "Created"
    STARTED = "Started"
    PREPARING = "Preparing"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    DELETING = "Deleting"


class DeployError(Exception):
    """An error the user can act on; `status` is the HTTP status it maps to."""

    status = 500
    code = "internal"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class BadRequest(DeployError):
    status = 400
    code = "bad_request"


class Unavailable(DeployError):
    status = 503
    code = "unavailable"


class NotFound(DeployError):
    status = 404
    code = "not_found"


class InvalidInput(DeployError):
    status = 422
    code = "invalid_input"


class Conflict(DeployError):
    status = 409
    code = "conflict"


@dataclass
class HealthCheck:
    """How the supervisor checks an instance (seed defaults, shorter interval for checkpoints)."""

    timeout_s: float = 1.0
    interval_s: float = 2.0
    fail_threshold: int = 3
    pass_threshold: int = 3
    replace_after_s: float = 30.0  # an instance Unhealthy this long is replaced
    protocol: str = "http"  # or "grpc" (grpc.health.v1), for Docker-image nodes
    path: str = ""  # HTTP path of the check; "" for a checkpoint node's own /readyz
    port: int = 0  # 0: the node's port


@dataclass
class Autoscale:
    """Scaling between min and max on the requests in flight."""

    target_concurrency: float = 1.0  # requests in flight per instance the node aims at
    up_delay_s: float = 1.0  # demand must last this long before instances are added
    down_delay_s: float = 30.0  # and be gone this long before they are removed


@dataclass
class Node:
    name: str
    checkpoint_id: str
    checkpoint: str  # "name@version", as the user pinned it
    min: int = 1
    max: int = 1
    runtime: str = "process"
    env: dict[str, str] = field(default_factory=dict)
    health: HealthCheck = field(default_factory=HealthCheck)
    autoscale: Autoscale = field(default_factory=Autoscale)
    maintenance_limit: int = 1  # instances an update may have out of service at once
    sticky: dict[str, str] | None = None  # {"header": NAME} or {"input": NAME}
    suspended: bool = False
    strict: bool = False  # a failed replay check keeps its instances out of balancing
    max_queue: int | None = None  # requests waiting for an instance; None: 16 per slot
    expose_tracebacks: bool = False  # anonymous callers of a public alias get them too
    capture: dict[str, Any] | None = None  # {"percent": P, "limit": N}: requests recorded
    # {"max_size": N, "max_wait_ms": MS}: one run of a batched cell serves many callers
    batch: dict[str, Any] | None = None
    replay: dict[str, Any] | None = None  # the latest replay check: status, diff, checked_at
    key_hash: str = ""
    created: float = field(default_factory=time.time)
    deleting: bool = False
    # False until the node first reaches its minimum or first loses an instance.
    settled: bool = False
    # Containers (issue 4): a Docker-image node has an `image` and no checkpoint.
    image: str = ""
    port: int = 0  # where the image listens (inside the container)
    protocol: str = "http"  # or "grpc"
    base_image: str = ""  # a checkpoint node on Docker: its base ("": the service's)
    config: str = ""  # the instance configuration (CPU, memory, GPUs); "": no limits
    memory_mb: int = 0  # overrides the configuration's memory
    disk_mb: int = 0
    network: str = "host"  # "host" (127.0.0.1 on the host) or "bridge" (published ports)
    session_timeout_s: float = 0.0  # a request through the gateway; 0: the service's timeout
    idle_timeout_s: float = 300.0  # an idle connection to an instance is closed after this
    telemetry: dict[str, Any] | None = None  # {"path": "/metrics", "port": 0}: scraped
    secrets: list[str] = field(default_factory=list)  # names; the values are stored apart
    registry: dict[str, str] | None = None  # {"server", "username"}; the password apart
    secrets_digest: str = ""  # changes when a secret's value does, so instances roll
    placement: list[str] = field(default_factory=list)  # swarm: constraints, all to be met

    @property
    def generation(self) -> str:
        """What an instance is made from: an update changes it, and instances roll."""
        base = f"{self.checkpoint_id}/{self.runtime}/{sorted(self.env.items())}"
        if self.runtime not in ("docker", "swarm"):
            return base
        parts: tuple[Any, ...] = (self.image, self.port, self.base_image, self.config, self.memory_mb,
                 self.disk_mb, self.network, self.secrets_digest)
        if self.placement:  # swarm (issue 14); left out when empty, so docker's stay as they were
            parts += (self.placement,)
        return base + "/" + "/".join(map(str, parts))

    @property
    def from_image(self) -> bool:
        return bool(self.image)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("key_hash")
        data.pop("settled")
        data.pop("secrets_digest")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        data = dict(data)
        data["health"] = HealthCheck(**data.get("health", {}))
        data["autoscale"] = Autoscale(**data.get("autoscale", {}))
        return cls(**data)


@dataclass
class Alias:
    """A stable public name that splits traffic across nodes by weight."""

    name: str
    nodes: dict[str, int]  # node -> percent of the traffic; the weights sum to 100
    metadata: dict[str, str] = field(default_factory=dict)
    public: bool = False
    shadow: dict[str, Any] | None = None  # {"node": NAME, "percent": P}: mirrored, not returned
    sticky: dict[str, str] | None = None  # {"header": NAME} or {"input": NAME}
    key_hash: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("key_hash")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alias:
        return cls(**data)


@dataclass
class Instance:
    id: str
    node: str
    status: InstanceStatus = InstanceStatus.UNDEFINED
    pid: int | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    log_path: str = ""
    created: float = field(default_factory=time.time)
    message: str = ""
    generation: str = ""  # the node's generation it was made from
    checkpoint_id: str = ""
    runtime: str = "process"
    container_id: str = ""
    health_port: int = 0  # where its health check answers, when not on `port`
    telemetry: str = ""  # where its own metrics are scraped (Prometheus text), if anywhere

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def node_status(node: Node, instances: list[Instance]) -> NodeStatus:
    """The seed's rule: Healthy when healthy instances >= the minimum."""
    if node.deleting:
        return NodeStatus.DELETING
    healthy = sum(1 for i in instances if i.status is InstanceStatus.HEALTHY)
    if healthy >= node.min:
        return NodeStatus.HEALTHY
    return NodeStatus.UNHEALTHY if node.settled else NodeStatus.CREATED
