"""Pure: rclone's filter glob syntax, translated to regular expressions. No I/O.

Paths are relative to the prefix and have no leading slash (`resnet/1/model.onnx`). A
pattern matches a whole trailing run of path segments (`*.onnx` at any depth), or, after a
leading `/`, from the root; one ending in `/` names a folder and matches what lies below
it. `*` and `?` stay within a segment, `**` crosses them, `[...]`/`[!...]` is a class,
`{a,b}` alternatives, `\\` escapes. rclone's `{{regexp}}` is refused: a pattern here is
a glob, always.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class PatternError(ValueError):
    """A pattern that is no glob; the message says what is wrong, not which option."""


def _class(glob: str, i: int) -> tuple[str, int]:
    """The `[...]` starting at glob[i] as a regex class (never matching `/`), and the index
    after it."""
    j = i + 1
    negate = j < len(glob) and glob[j] in "!^"
    j += negate
    out: list[str] = []
    while j < len(glob) and (glob[j] != "]" or not out):  # a `]` first is in the class
        c = glob[j]
        if c == "\\" and j + 1 < len(glob):
            out.append(re.escape(glob[j + 1]))
            j += 2
            continue
        out.append("-" if c == "-" else re.escape(c))
        j += 1
    if j >= len(glob):
        raise PatternError(f"unclosed [ at character {i + 1}")
    body = "".join(out)
    return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), j + 1


def _braces(glob: str, i: int) -> tuple[list[str], int]:
    """The alternatives of the `{...}` at glob[i], and the index after its `}`."""
    if glob.startswith("{{", i):
        raise PatternError("{{regexp}} is not supported: write a glob")
    depth, j, parts, begin = 0, i, [], i + 1
    while j < len(glob):
        c = glob[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                parts.append(glob[begin:j])
                return parts, j + 1
        elif c == "," and depth == 1:
            parts.append(glob[begin:j])
            begin = j + 1
        j += 1
    raise PatternError(f"unclosed {{ at character {i + 1}")


def translate(glob: str) -> str:
    """A glob (no leading `/`, no trailing `/`) as the body of a regular expression."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "\\":
            if i + 1 == len(glob):
                raise PatternError("ends with a lone backslash")
            out.append(re.escape(glob[i + 1]))
            i += 2
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            part, i = _class(glob, i)
            out.append(part)
        elif c == "{":
            parts, i = _braces(glob, i)
            out.append("(?:" + "|".join(translate(p) for p in parts) + ")")
        elif c == "}":
            raise PatternError(f"unmatched }} at character {i + 1}")
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    anchored: bool  # a leading `/`: from the prefix root
    folder: bool  # a trailing `/`: what lies below a folder it names
    body: str  # the glob between them
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> Pattern:
        anchored, folder = text.startswith("/"), text.endswith("/")
        body = text[1 if anchored else 0 : len(text) - 1 if folder and len(text) > 1 else None]
        if not body.strip("/"):
            raise PatternError("names no path")
        lead = "^" if anchored else "(?:^|/)"
        try:
            regex = re.compile(lead + translate(body) + ("/" if folder else "$"))
        except re.error as exc:
            raise PatternError(f"bad character class ({exc.msg})") from None
        return cls(text, anchored, folder, body, regex)

    def matches(self, path: str) -> bool:
        """Whether the file at `path` matches (a folder pattern: one of its folders does)."""
        return self.regex.search(path) is not None

    def covers(self, folder: str) -> bool:
        """Whether every path below `folder` matches: a folder pattern naming it or one above
        it, or one whose last segment is `**`."""
        if self.folder:
            return self.regex.search(folder + "/") is not None
        if self.body == "**":
            return True
        if self.body.endswith("/**"):
            return Pattern.parse(f"{'/' if self.anchored else ''}{self.body[:-2]}").covers(folder)
        return False

    def may_match_below(self, folder: str) -> bool:
        """False only when no path below `folder` can match; True when unsure. A pattern not
        anchored matches a trailing run of segments, which any folder can hold."""
        if not self.anchored or "{" in self.body:
            return True
        given = folder.split("/")
        segments = self.body.split("/")
        for i, segment in enumerate(segments):
            if "**" in segment or i >= len(given):
                return True
            if not re.fullmatch(translate(segment), given[i]):
                return False
        return self.folder  # the pattern ends at `folder` or above: a file there, or the folder


@dataclass(frozen=True, slots=True)
class Filters:
    """--include and --exclude: a path is kept unless an exclude matches it, and, when any
    include is given, only if one matches it. Their order does not matter."""

    include: tuple[Pattern, ...] = ()
    exclude: tuple[Pattern, ...] = ()

    @classmethod
    def parse(cls, include: tuple[str, ...], exclude: tuple[str, ...]) -> Filters:
        return cls(tuple(map(Pattern.parse, include)), tuple(map(Pattern.parse, exclude)))

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude)

    def keeps(self, path: str) -> bool:
        if any(p.matches(path) for p in self.exclude):
            return False
        return not self.include or any(p.matches(path) for p in self.include)

    def drops_folder(self, folder: str) -> bool:
        """Whether nothing below `folder` (a model's or a version's) can be kept."""
        if any(p.covers(folder) for p in self.exclude):
            return True
        return bool(self.include) and not any(p.may_match_below(folder) for p in self.include)
