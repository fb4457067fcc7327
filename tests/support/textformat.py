"""Protobuf text format, as far as a TF Serving model config file uses it
(https://protobuf.dev/reference/protobuf/textformat-spec/): fields `name: value` and
`name { ... }`, strings in double or single quotes with C escapes (octal bytes included),
integers, identifiers. Read the way TF Serving reads --model_config_file, for the tests and
the stand-in; a document it cannot read is a ValueError."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["parse"]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>-?[0-9]+)
      | (?P<punct>[{}:])
      | (?P<comment>\#[^\n]*)
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", '"': b'"', "'": b"'"}


def _unquote(literal: str) -> str:
    """Decode a text-format string literal: escapes, including octal bytes, then UTF-8."""
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
        elif m := re.match(r"[0-7]{1,3}", body[i + 1 :]):
            out.append(int(m.group(), 8))
            i += 1 + len(m.group())
        elif body[i + 1 : i + 2] in _ESCAPES:
            out += _ESCAPES[body[i + 1]]
            i += 2
        else:
            raise ValueError(f"unknown escape in {literal}")
    return out.decode("utf-8")


_SCALARS: dict[str, Callable[[str], Any]] = {"string": _unquote, "number": int, "ident": str}


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, tokens = 0, []
    while text[pos:].strip():
        m = _TOKEN.match(text, pos)
        if not m or m.lastgroup is None:
            raise ValueError(f"unexpected input at {text[pos : pos + 20]!r}")
        if m.lastgroup != "comment":
            tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return tokens


def parse(text: str) -> dict[str, list[Any]]:
    """Text format -> {field: [values]}; a message value is again such a dict."""
    tokens = _tokens(text)

    def message(i: int, closing: bool) -> tuple[dict[str, list[Any]], int]:
        fields: dict[str, list[Any]] = {}
        while i < len(tokens):
            kind, value = tokens[i]
            if kind == "punct" and value == "}":
                if not closing:
                    raise ValueError("unbalanced '}'")
                return fields, i + 1
            if kind != "ident" or i + 1 >= len(tokens):
                raise ValueError(f"expected a field name, got {value!r}")
            nxt = tokens[i + 1]
            if nxt == ("punct", ":") and tokens[i + 2 : i + 3] == [("punct", "{")]:
                nxt, i = ("punct", "{"), i + 1  # `name: { ... }` is a message too
            if nxt == ("punct", "{"):
                sub, i = message(i + 2, closing=True)
                fields.setdefault(value, []).append(sub)
                continue
            if nxt != ("punct", ":") or i + 2 >= len(tokens):
                raise ValueError(f"expected ':' and a value after {value}")
            vkind, raw = tokens[i + 2]
            if vkind == "punct":
                raise ValueError(f"expected a value after {value}:, got {raw!r}")
            fields.setdefault(value, []).append(_SCALARS[vkind](raw))
            i += 3
        if closing:
            raise ValueError("missing '}'")
        return fields, i

    return message(0, closing=False)[0]
