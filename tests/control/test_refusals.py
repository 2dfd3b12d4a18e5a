"""Settings that could never start, and bodies of any shape or depth: 400 or 422 naming the
field and the bound, never a 500, and nothing stored."""

from __future__ import annotations

from ..conftest import checkpoint_body, until
from .test_api import ADDER, call, error_of

NODE = {"name": "x", "checkpoint": "adder"}

UNSTARTABLE_NODES = [
    ({"env": {"A": "x\x00y"}}, "env.A", "NUL"),
    ({"env": {"A\x00B": "1"}}, "env.A\x00B", "NUL"),
    ({"secrets": {"TOKEN": "s\x00"}}, "secrets.TOKEN", "NUL"),
    ({"health": {"path": "/ready\x00"}}, "health.path", "NUL"),
    ({"sticky": {"header": "x-user\x00"}}, "sticky.header", "NUL"),
    ({"config": "small\x00"}, "config", "NUL"),
    ({"env": {"A": "x" * 40_000}}, "env.A", "at most 32768"),
    ({"env": {f"V{i}": "1" for i in range(300)}}, "env", "at most 256"),
    ({"memory_mb": 2**64}, "memory_mb", "1048576"),
    ({"maintenance_limit": 2**64}, "maintenance_limit", "from 1 to 64"),
    ({"health": {"interval_s": 1e-9}}, "health.interval_s", "from 0.01 to 3600"),
    ({"health": {"interval_s": 1e308}}, "health.interval_s", "from 0.01 to 3600"),
    ({"health": {"timeout_s": 1e308}}, "health.timeout_s", "to 300"),
    ({"health": {"replace_after_s": 1e-9}}, "health.replace_after_s", "from 0.1"),
    ({"health": {"fail_threshold": 10**6}}, "health.fail_threshold", "to 100"),
    ({"autoscale": {"up_delay_s": 1e308}}, "autoscale.up_delay_s", "to 86400"),
    ({"autoscale": {"target_concurrency": 1e-9}}, "autoscale.target_concurrency", "0.01"),
    ({"config": []}, "config", "one of"),
    ({"config": {"cpus": 1}}, "config", "one of"),
]


async def test_settings_that_cannot_start_are_refused_with_the_bound(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    for settings, field, bound in UNSTARTABLE_NODES:
        code, error = await error_of(jp_fetch, "nodes", method="POST", body={**NODE, **settings})
        assert (code, error["error"].get("field")) == (422, field), (settings, error)
        assert bound in error["error"]["message"], error
    await call(jp_fetch, "nodes", method="POST", body={**NODE, "min": 0})
    for settings, field, _ in UNSTARTABLE_NODES:
        code, error = await error_of(jp_fetch, "nodes", "x", method="PATCH", body=settings)
        assert (code, error["error"].get("field")) == (422, field), (settings, error)
    node = await call(jp_fetch, "nodes", "x")
    assert (node["env"], node["maintenance_limit"], node["health"]["interval_s"]) == ({}, 1, 2.0)


async def test_alias_names_and_metadata_of_any_shape(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    await call(jp_fetch, "nodes", method="POST", body={**NODE, "min": 0})
    target = {"nodes": {"x": 100}, "force": True}
    for name in ([], ["a"], {}, {"a": 1}, 7, None):
        code, error = await error_of(jp_fetch, "aliases", method="POST",
                                     body={**target, "name": name})
        assert (code, error["error"]["field"]) == (422, "name"), (name, error)
    big = {"notes": "x" * 5000}
    code, error = await error_of(jp_fetch, "aliases", "a", method="PUT",
                                 body={**target, "metadata": big})
    assert (code, error["error"]["field"]) == (422, "metadata"), error
    assert "at most 4096" in error["error"]["message"]
    assert (await call(jp_fetch, "aliases"))["aliases"] == []
    await call(jp_fetch, "aliases", "a", method="PUT",
               body={**target, "metadata": {"notes": "x" * 3000}})


BAD_BODIES = [
    ("[" * 100_000 + "]" * 100_000, "nests more than 32"),
    ('{"a":' * 100_000 + "1" + "}" * 100_000, "nests more than 32"),
    ("[" * 40 + "]" * 40, "nests more than 32"),
    ('{"name": "x", "checkpoint": "adder", "min": NaN}', "NaN"),
    ('{"name": "x", "checkpoint": "adder", "health": {"interval_s": Infinity}}', "Infinity"),
    ('{"name": "x", "checkpoint": "adder", "env": {"A": "\\ud800"}}', "not valid Unicode"),
    (b"\xff\xfe", "not valid JSON"),
]
WRITES = [(("checkpoints",), "POST"), (("nodes",), "POST"), (("nodes", "x"), "PATCH"),
          (("aliases",), "POST"), (("aliases", "a"), "PUT")]


async def test_bodies_of_any_depth_get_400(jp_fetch, deploy):
    for path, method in WRITES:
        for body, reason in BAD_BODIES:
            code, error = await error_of(jp_fetch, *path, method=method, body=body)
            assert (code, error["error"]["field"]) == (400, "body"), (path, body[:50], error)
            assert reason in error["error"]["message"], error
        for body in ("[]", "3", '"x"', "null"):
            code, error = await error_of(jp_fetch, *path, method=method, body=body,
                                         allow_nonstandard_methods=True)
            assert code in (404, 422) and "error" in error, (path, body, error)
    assert (await call(jp_fetch, "nodes"))["nodes"] == []


async def test_a_log_tail_beyond_the_bound_is_refused(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    await call(jp_fetch, "nodes", method="POST", body={"name": "adder", "checkpoint": "adder"})
    await until(lambda: deploy.node("adder")["status"] == "Healthy", timeout=30,
                message="the node to be Healthy (its instance has written its log)")
    code, error = await error_of(jp_fetch, "nodes", "adder", "logs",
                                 params={"tail": "304286589216"})  # found by schemathesis
    assert (code, error["error"]["field"]) == (422, "tail"), error
    assert "16777216" in error["error"]["message"]
    logs = await call(jp_fetch, "nodes", "adder", "logs", params={"tail": str(16 * 1024 * 1024)})
    assert len(logs["logs"]) == 1


async def test_checkpoint_data_that_is_not_ascii_is_refused(jp_fetch, deploy):
    body = {**checkpoint_body("adder", **ADDER), "data": "\u00afYd\U0001e513"}  # schemathesis
    code, error = await error_of(jp_fetch, "checkpoints", method="POST", body=body)
    assert (code, error["error"]["field"]) == (422, "data"), error
    assert (await call(jp_fetch, "checkpoints"))["checkpoints"] == []


async def test_calls_of_any_depth_get_400(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    await call(jp_fetch, "nodes", method="POST", body={"name": "adder", "checkpoint": "adder"})
    await until(lambda: deploy.node("adder")["status"] == "Healthy", timeout=30,
                message="the node to be Healthy")
    deep = '{"input": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}"
    for body, reason in [*BAD_BODIES, (deep, "nests more than 32"),
                         ('{"input": {"a": NaN, "b": 1}}', "NaN")]:
        code, error = await error_of(jp_fetch, "nodes", "adder:execute", method="POST",
                                     body=body)
        assert (code, error["error"]["field"]) == (400, "body"), (body[:50], error)
        assert reason in error["error"]["message"], error
    answer = await call(jp_fetch, "nodes", "adder:execute", method="POST",
                        body={"input": {"a": 1, "b": 2}})
    assert answer == {"output": {"total": 6.0}}
