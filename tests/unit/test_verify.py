"""Pure parts of checkpoint verification: the refusal reason read back from a worker's log,
and the public key as instances receive it."""

from __future__ import annotations

import pytest

from jupyter_deploy.worker.verify import Refused, load_public_key, refusal


def test_the_reason_is_the_last_refusal_in_the_log():
    log = ("2026-12-01T10:00:00Z INFO starting\n"
           "2026-12-01T10:00:00Z ERROR checkpoint refused: state.pkl does not match its "
           "signed hash\n")
    assert refusal(log) == "state.pkl does not match its signed hash"
    assert refusal("") == "its checkpoint does not verify"  # the log was lost: still a reason


def test_public_keys_are_32_bytes_of_hex():
    assert load_public_key("ab" * 32 + "\n") == bytes.fromhex("ab" * 32)
    for text, told in [("zz", "not hex"), ("ab" * 31, "32-byte")]:
        with pytest.raises(Refused, match=told):
            load_public_key(text)
