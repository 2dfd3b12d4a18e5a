"""The HTTP layer's own RFC 9112 / 9110 rules, as pure functions (issue 11)."""

from __future__ import annotations

import pytest

from jupyter_deploy.http.framing import Refusal, check_head, tokens, wants_close

HOST = {"host": "t"}


def test_connection_is_a_list_of_tokens():
    assert tokens(" Keep-Alive ,, Close") == ["keep-alive", "close"]
    assert wants_close("1.1", "keep-alive, close") and wants_close("1.1", "TE, CLOSE")
    assert not wants_close("1.1", "closed") and not wants_close("1.1", "")
    assert wants_close("1.0", "") and not wants_close("1.0", "foo, keep-alive")


@pytest.mark.parametrize(("version", "headers", "code"), [
    ("1.1", {}, "bad_request"),
    ("1.9", HOST, "version_not_supported"),
    ("2.0", HOST, "version_not_supported"),
    ("0.9", {}, "bad_request"),
    ("1.1", {**HOST, "transfer-encoding": "xchunked"}, "bad_request"),
    ("1.1", {**HOST, "transfer-encoding": "chunked, identity"}, "bad_request"),
    ("1.1", {**HOST, "transfer-encoding": "chunked, chunked"}, "bad_request"),
    ("1.1", {**HOST, "transfer-encoding": ","}, "bad_request"),
    ("1.1", {**HOST, "transfer-encoding": "gzip, chunked"}, "not_implemented"),
])
def test_refused_heads(version, headers, code):
    with pytest.raises(Refusal) as refused:
        check_head(version, headers, set())
    assert refused.value.code == code


def test_accepted_heads():
    check_head("1.1", {**HOST, "transfer-encoding": "Chunked"}, set())
    check_head("1.0", {}, set())  # Host is required from HTTP/1.1 on
    with pytest.raises(Refusal):
        check_head("1.1", HOST, {"host"})
