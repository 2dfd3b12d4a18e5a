"""The type grammar, as users write it in `--inputs/--outputs` and in annotations."""

from __future__ import annotations

import functools
import re

from .kinds import COLUMN_DTYPES, DTYPES, PREFIXES, SCALARS, SPELLINGS, Type

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][\w.]*)|(?P<num>-?\d+)|(?P<sym>[\[\](),:|?]))")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text.rstrip()):
            match = _TOKEN.match(text, pos)
            if match is None:
                raise ValueError(f"unexpected {text[pos:].strip()[:10]!r}")
            self.tokens.append(match.group(match.lastgroup))  # type: ignore[arg-type]
            pos = match.end()
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'more'}"
                             + (f" before {token!r}" if token else " at the end"))
        self.pos += 1
        return token

    def parse(self) -> Type:
        result = self.type()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r}")
        return result

    def type(self) -> Type:
        result = self.primary()
        if self.peek() == "|":
            self.take()
            if _name(self.take()) != "None":
                raise ValueError("only `T | None` unions are supported")
            result = Type("optional", result)
        if self.peek() == "?":
            self.take()
            result = Type("optional", result)
        if self.peek() == "|":
            raise ValueError("only `T | None` unions are supported")
        return result

    def primary(self) -> Type:
        name = _name(self.take())
        if name == "None":
            if self.peek() == "|":
                self.take()
                return Type("optional", self.primary())
            raise ValueError("None alone is not a type")
        args = self.peek() == "["
        if args:
            self.take("[")
        if name == "Optional":
            if not args:
                raise ValueError("Optional needs a type: Optional[T]")
            result = Type("optional", self.type())
        elif name == "list" and args:
            result = Type("list", self.type())
        elif name == "dict" and args:
            key = self.type()
            if self.peek() != ",":
                result = Type("dict", key)
            elif str(key) != "str":
                raise ValueError("dict keys must be str (JSON object keys)")
            else:
                self.take(",")
                result = Type("dict", self.type())
        elif name == "ndarray":
            result = self.array() if args else Type("ndarray")
        elif name == "DataFrame":
            result = Type("dataframe", columns=self.columns() if args else None)
        elif name in SCALARS:
            if args:
                raise ValueError(f"{name} takes no [...]")
            result = Type(name)
        else:
            raise ValueError(f"unknown type {name!r}")
        if args:
            self.take("]")
        return result

    def array(self) -> Type:
        dtype, shape = None, None
        if self.peek() != "(":
            dtype = _dtype(self.take())
            if self.peek() == ",":
                self.take(",")
        if self.peek() == "(":
            self.take("(")
            dims: list[int] = []
            while self.peek() != ")":
                token = self.take()
                if token in ("None", "?"):
                    token = "-1"
                if not re.fullmatch(r"-?\d+", token) or int(token) < -1:
                    raise ValueError(f"an axis length must be a number or -1, not {token!r}")
                dims.append(int(token))
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            shape = tuple(dims)
        return Type("ndarray", dtype=None if dtype == "any" else dtype, shape=shape)

    def columns(self) -> tuple[tuple[str, str], ...]:
        columns: list[tuple[str, str]] = []
        while self.peek() != "]":
            name = self.take()
            self.take(":")
            dtype = _dtype(self.take(), COLUMN_DTYPES)
            if any(n == name for n, _ in columns):
                raise ValueError(f"column {name!r} is declared twice")
            columns.append((name, dtype))
            if self.peek() == ",":
                self.take(",")
        return tuple(columns)


def _name(token: str) -> str:
    name = PREFIXES.sub("", token)
    return SPELLINGS.get(name, name)


def _dtype(token: str, allowed: tuple[str, ...] = (*DTYPES, "any")) -> str:
    name = PREFIXES.sub("", token)
    name = {"float": "float64", "int": "int64", "bool_": "bool", "object": "any",
            "string": "str"}.get(name, name)
    if name not in allowed:
        raise ValueError(f"unknown dtype {token!r} (known: {', '.join(allowed)})")
    return name


@functools.lru_cache(maxsize=1024)
def parse_type(text: str) -> Type:
    """Parse a type as written by a user; ValueError says what is wrong."""
    return _Parser(text).parse()


