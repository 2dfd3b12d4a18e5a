"""What runs inside a checkpoint instance: restore the snapshot, then serve the cell.

Endpoints: `POST /execute` (and `POST /`) run the cell with the inputs bound, `POST /replay`
runs it for the replay check and then goes back to the pinned state, `GET /livez`
answers while the process is up (with its phase), `GET /readyz` once the state is restored,
`GET /metrics` in the Prometheus text format, `POST /adopt` (with the instance's token)
for a restarted service to take the instance back.
Executions run one at a time on a single thread, so health checks are answered while a cell
runs, and the namespace carries over from one request to the next, as in a kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import linecache
import logging
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import error
from ..http.listener import HttpServer
from ..http.messages import Request, Response
from ..runtimes.identity import TOKEN_HEADER
from ..runtimes.lease import holder
from ..runtimes.memory import RECYCLE_EXIT
from ..types import InputCheck, invalid_input_body
from ..types.values import Mismatch, decode, encode_fields, json_default, needs_decoding
from .batching import Batcher, settings
from .logs import begin_request, end_request
from .metrics import InstanceMetrics
from .snapshot import Snapshot
from .token import TokenGate
from .verify import PREFIX, REFUSED_EXIT, Refused, manifest, verified_bytes

MAX_BODY = 24 * 1024 * 1024  # the gateway's 16 MB limit, once a gRPC call's bytes are base64
log = logging.getLogger("jupyter_deploy.worker")


class Worker:
    """One instance's interpreter state and the cell that runs in it."""

    def __init__(self, checkpoint_dir: Path, busy_limit_s: float = 15.0,
                 public_key: bytes = b"") -> None:
        self.checkpoint_dir = checkpoint_dir
        self.public_key = public_key  # the service's: what the checkpoint must be signed with
        self.busy_limit_s = busy_limit_s
        self.running_since: float | None = None  # when the cell now running started
        self.phase = "starting"
        self.meta: dict[str, Any] = {}
        self.namespace: dict[str, Any] = {}
        self.code: Any = None
        self.filename = ""
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cell")
        self.in_flight = 0
        self.started = time.monotonic()
        self.metrics = InstanceMetrics()
        self.snapshot = Snapshot(checkpoint_dir / "state.pkl", sha256="")  # "": until verified
        self.poisoned = False  # a request raised MemoryError: recycle after answering
        self.stop: asyncio.Event | None = None
        self.token = ""  # the service that adopts us must send it
        self.owner = 0  # the pid of the service we serve (0: any of the state folder's)
        self.batcher: Batcher | None = None  # a checkpoint pinned with --batch

    def restore(self) -> None:
        """Verify the checkpoint, then load the pinned state and compile the cell (runs on
        the executor thread). Nothing is unpickled from a checkpoint that does not verify."""
        self.phase = "preparing"
        signed = manifest(self.checkpoint_dir, self.public_key)
        meta = json.loads(verified_bytes(self.checkpoint_dir / "checkpoint.json",
                                         signed["checkpoint_json"]))
        self.snapshot.sha256 = signed["state"]
        self.filename = f"<cell {meta['name']}>"
        source = meta["source"]
        linecache.cache[self.filename] = (len(source), None, source.splitlines(True), self.filename)
        self.code = compile(source, self.filename, "exec")
        if "metrics" in source:  # load the metrics helper now rather than on a first request
            with contextlib.suppress(ImportError):
                import jupyter_deploy.metrics  # noqa: F401
        self.meta, self.namespace = meta, self._pinned_state()
        self.input_check = InputCheck(meta["inputs"])
        kinds = self.input_check.fields
        self.decoded = [(name, kind) for name, kind in kinds if needs_decoding(kind)]
        self.optional = [name for name, kind in kinds if kind.optional]
        self.batcher = Batcher.of(self)
        self.phase = "ready"
        log.info("restored %s (%d names) in %.3f s", meta["name"], len(meta["state"]),
                 time.monotonic() - self.started)

    def _pinned_state(self) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        namespace.update(self.snapshot.load())  # the local code it ships goes on sys.path
        return namespace

    def replay(self, request: Request, arrived: float) -> Response:
        """Run the example input, then start again from the pinned state: the check must not
        leave this instance in a state the others do not have (on the executor thread)."""
        try:
            return self.run(request, arrived, counted=False)
        finally:
            self.namespace = self._pinned_state()
            if "jupyter_deploy.metrics" in sys.modules:  # what the cell counted, too
                sys.modules["jupyter_deploy.metrics"].forget_all()
            # the first state was frozen out of the collections (see serve): let it go
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def run(self, request: Request, arrived: float, counted: bool = True) -> Response:
        """Run the request unless its caller is gone (on the executor thread); its prints
        go to the log with its request id; `counted`: in the instance's metrics."""
        if request.abandoned:  # queued behind a long run, and given up on: do not run it late
            return error("abandoned", "the caller went away")
        started = self.running_since = time.monotonic()
        begin_request(request.headers.get("x-request-id"))
        try:
            response = self.execute(request.body,
                                    request.headers.get("x-array-encoding", "list"))
        finally:
            end_request()
            self.running_since = None
        if counted:
            self.metrics.observe(started - arrived, time.monotonic() - started, response)
        return response

    def execute(self, body: bytes, arrays: str = "list") -> Response:
        """Bind the inputs, run the cell, return its outputs (arrays as `list` or `base64`)."""
        values = self.prepare(body)
        if isinstance(values, Response):
            return values
        self.namespace.update(values)
        return self.run_cell() or self.missing_output() or self.outputs(self.namespace, arrays)

    def prepare(self, body: bytes) -> dict[str, Any] | Response:
        """The inputs as the cell sees them (decoded, left-out optional ones None), or the
        answer that refuses them."""
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return error("malformed_json", f"the body is not valid JSON: {exc}", field="body")
        errors = self.input_check(payload)
        if errors:
            return Response(422, json.dumps(invalid_input_body(errors)).encode())
        inputs: dict[str, Any] = payload["input"]
        for name in self.optional:
            if name not in inputs:
                inputs[name] = None
        for name, kind in self.decoded:
            if name in inputs:
                try:
                    inputs[name] = decode(kind, inputs[name])
                except (ValueError, TypeError) as exc:
                    return error("invalid_input", f"input.{name}: {exc}",
                                 field=f"input.{name}")
        return inputs

    def run_cell(self) -> Response | None:
        """Run the cell in the namespace; the answer when it raised, else None."""
        try:
            exec(self.code, self.namespace)
        except BaseException as exc:  # noqa: BLE001 - the cell's error goes back to the caller
            if isinstance(exc, KeyboardInterrupt):
                raise
            # after a MemoryError the heap can't be trusted: answer, then make way (issue 12)
            self.poisoned = self.poisoned or isinstance(exc, MemoryError)
            return Response(500, self._cell_error(exc))
        return None

    def missing_output(self) -> Response | None:
        """The answer when the cell did not set a declared output, else None."""
        for field in self.meta["outputs"]:
            if field["name"] not in self.namespace:
                return error("missing_output", f"the cell did not set output "
                             f"`{field['name']}`", field=f"output.{field['name']}")
        return None

    def outputs(self, values: Mapping[str, Any], arrays: str) -> Response:
        """The answer carrying the declared outputs found in `values`."""
        try:
            output = encode_fields(self.meta["outputs"], values, "output", arrays)
        except Mismatch as exc:
            return error("invalid_output", f"output `{exc.field[7:]}` does not have its "
                         f"declared type: {exc.message}", field=exc.field)
        try:
            return Response(200, json.dumps({"output": output}, default=json_default).encode())
        except (TypeError, ValueError) as exc:
            return error("unserializable_output", f"an output cannot be sent as JSON: {exc}")

    def _cell_error(self, exc: BaseException) -> bytes:
        """The seed's error fields, with a traceback that starts in the cell."""
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # skip the exec() frame
        lines = traceback.format_exception(type(exc), exc, tb)
        log.error("cell raised:\n%s", "".join(lines).rstrip())
        return json.dumps({
            "error_name": type(exc).__name__,
            "error_message": str(exc),
            "traceback": [line.rstrip("\n") for line in lines],
        }).encode()

    def check(self, request: Request) -> None:
        """Every request is read whole (the server enforces the size limit)."""

    def handle(self, request: Request, context: None) -> Response | Awaitable[Response]:
        """Route one request; executions go to the cell thread."""
        method, path = request.method, request.path
        if method == "POST" and path in ("/execute", "/", "/replay"):
            if self.phase != "ready":
                return error("not_ready", f"the instance is {self.phase}")
            batcher = self.batcher
            if batcher is not None and path != "/replay":
                limits = settings(request.headers.get("x-batch", ""))
                if limits is not None:  # sent by the gateway for a batching node
                    return batcher.submit(request, *limits)
            return self._execute(request, self.replay if path == "/replay" else self.run)
        if method == "GET" and path == "/livez":
            return Response(200, json.dumps({"phase": self.phase, "pid": os.getpid()}).encode())
        if method == "GET" and path in ("/readyz", "/healthz"):
            busy_s = time.monotonic() - self.running_since if self.running_since else 0.0
            # a cell stuck past the request timeout makes the instance useless to callers
            ready = self.phase == "ready" and busy_s <= self.busy_limit_s
            body = {"phase": self.phase, "busy_s": round(busy_s, 3)}
            return Response(200 if ready else 503, json.dumps(body).encode())
        if method == "GET" and path == "/metrics":
            return self.metrics.response()
        if method == "POST" and path == "/adopt":
            return self.adopt(request)
        return error("not_found", f"no endpoint {method} {path}")

    def adopt(self, request: Request) -> Response:
        """A restarted service takes this instance back: with our token only, it becomes
        the owner whose lease keeps us running (issue 13)."""
        given = request.headers.get(TOKEN_HEADER, "")
        if not self.token or not hmac.compare_digest(given.encode(), self.token.encode()):
            return error("forbidden", f"{TOKEN_HEADER} is missing or wrong",
                         field=TOKEN_HEADER)
        try:
            owner = json.loads(request.body)["owner"]
        except (ValueError, KeyError, TypeError):
            owner = None
        if not isinstance(owner, int) or isinstance(owner, bool) or owner <= 0:
            return error("invalid_input", "owner must be the pid of the adopting service",
                         field="owner")
        self.owner = owner
        log.info("adopted by the deploy service with pid %d", owner)
        return Response(200, json.dumps({"instance": os.environ.get("JUPYTER_DEPLOY_INSTANCE"),
                                         "pid": os.getpid(), "phase": self.phase}).encode())

    async def _execute(self, request: Request, run: Any) -> Response:
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, run, request, time.monotonic())
        finally:
            self.in_flight -= 1
            if self.poisoned and self.stop is not None:
                self.stop.set()


async def serve(checkpoint_dir: Path, fd: int, busy_limit_s: float = 15.0,
                public_key: bytes = b"", lease: Path | None = None, lease_grace_s: float = 30.0,
                owner: int = 0, token: str = "", gated: bool = False) -> int:
    """Serve on the listening socket passed as `fd` until SIGTERM, a MemoryError (return
    RECYCLE_EXIT), or the state folder's `lease` not held by `owner` (the service that
    started or adopted us) for `lease_grace_s`. A checkpoint that does not verify with
    `public_key` returns REFUSED_EXIT before anything is unpickled. `token` is the instance's
    own (a restarted service adopts it with it); `gated`: only health checks are answered
    without it (worker/token.py)."""
    import signal
    import socket

    loop = asyncio.get_running_loop()
    worker = Worker(checkpoint_dir, busy_limit_s, public_key)
    worker.stop = stop = asyncio.Event()
    worker.owner, worker.token = owner, token
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # watched from the first moment: a service that died while we started is noticed too
    watch = asyncio.create_task(_watch_lease(lease, lease_grace_s, worker, stop)) \
        if lease else None
    sock = socket.socket(fileno=fd)
    server = HttpServer(TokenGate(worker, token) if gated else worker, MAX_BODY)
    await server.start(sock)
    restore: asyncio.Future[None] = loop.run_in_executor(worker.executor, worker.restore)
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    await asyncio.wait([restore, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not restore.done():  # stopped while restoring: the executor thread cannot be stopped
        await server.stop(0.0)
        os._exit(0)
    try:
        restore.result()
    except Refused as exc:
        log.error("%s%s", PREFIX, exc)
        return REFUSED_EXIT
    except Exception:
        log.exception("could not restore the checkpoint in %s", checkpoint_dir)
        return 3
    gc.freeze()  # the restored state lives as long as the instance: no full GC scans of it
    await stopped
    if watch is not None:
        watch.cancel()
    await server.stop(10.0)  # the answers in flight are given first
    log.info("stopped")
    return RECYCLE_EXIT if worker.poisoned else 0


async def _watch_lease(lease: Path, grace_s: float, worker: Worker, stop: asyncio.Event
                       ) -> None:
    """Set `stop` once the worker's owner (which an adoption changes) has not held the
    state folder's lease for `grace_s`."""
    loop = asyncio.get_running_loop()
    lost_at: float | None = None
    while not stop.is_set():
        now = loop.time()
        held_by = holder(lease)
        if held_by and worker.owner in (0, held_by):  # owner 0: any service of the folder
            lost_at = None
        elif lost_at is None:
            lost_at = now
        elif now - lost_at >= grace_s:
            log.warning("the deploy service that started this instance has not held %s for "
                        "%g s; stopping", lease, grace_s)
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(1.0, max(grace_s / 4, 0.05)))
