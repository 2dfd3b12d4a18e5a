"""How a %deploy line splits into words: as a shell would, comments included."""

from __future__ import annotations

import pytest

from jupyter_deploy.kernel.magics import words


@pytest.mark.parametrize(("line", "expected"), [
    ("node create adder-node --min 2   # waits until it is Healthy",
     ["node", "create", "adder-node", "--min", "2"]),
    ("call adder-node a=1 b=2  # → {'total': 6.0}", ["call", "adder-node", "a=1", "b=2"]),
    ("call n tag=a#b", ["call", "n", "tag=a#b"]),  # inside a word: not a comment
    ("call n text='one # two' # said", ["call", "n", "text=one # two"]),
    ("call n empty='' b=2", ["call", "n", "empty=", "b=2"]),
    ("# only a comment", []),
    ("", []),
])
def test_a_hash_that_starts_a_word_starts_a_comment(line: str, expected: list[str]) -> None:
    assert words(line) == expected
