"""Pure: what --pin and each model's aliases object hold in place. No I/O.

A pin (`--pin resnet=7`) says which version a model serves: it is installed whatever --keep
says, --keep counts from it, and newer versions leave DEST, so a server on its default
"latest" policy rolls back with no change to the bucket. An aliases object
(`PREFIX/resnet/aliases.json`: `{"stable": 7, "canary": 9}`) keeps the versions it names
installed beside the newest ones and names them for TF Serving's version labels. A pin or an
alias naming a version that neither the bucket nor DEST holds is its model's error: nothing
of that model changes until it is fixed, since guessing would delete what it may mean.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gcs_model_sync.errors import ConfigError
from gcs_model_sync.layout import servable

ALIASES_MAX = 64 * 1024  # bytes read of an aliases object; a larger one is refused
# TF Serving takes any string as a label; these are what a URL path segment
# (/v1/models/m/labels/<label>) and a text-format string hold without escaping.
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True, slots=True)
class Aliases:
    """A model's aliases object as read this pass: label -> version number, or its problem."""

    model: str
    where: str  # gs://bucket/prefix/model/aliases.json
    generation: int
    labels: Mapping[str, int] = field(default_factory=dict)
    problem: str | None = None
    unread: bool = False  # the read failed: tried again next pass


@dataclass(frozen=True, slots=True)
class Hold:
    """One model's pin and aliases, as the plan applies them."""

    model: str
    pin: int | None = None
    labels: Mapping[str, int] = field(default_factory=dict)
    aliases: Aliases | None = None  # where the labels come from

    @property
    def kept(self) -> frozenset[int]:
        """The versions installed and never pruned while they are named."""
        pinned = () if self.pin is None else (self.pin,)
        return frozenset((*pinned, *self.labels.values()))

    def wanted(self, listed: Iterable[int], keep: int) -> set[int]:
        """Of the `listed` numbers (the bucket's, ready to install), the ones to have: the
        newest `keep` (0: all) at or below the pin, and every version held."""
        pool = sorted(n for n in listed if self.pin is None or n <= self.pin)
        return {*(pool[-keep:] if keep else pool), *(n for n in listed if n in self.kept)}


@dataclass(frozen=True, slots=True)
class Problem:
    """A pin or aliases object its model cannot follow: one line, the model held."""

    model: str
    message: str


def parse(values: Iterable[str]) -> dict[str, int]:
    """`("team/resnet=7",)` -> `{"team/resnet": 7}`; `.=7` pins the model at the prefix
    itself (as `status` names it). A usage error names the bad value."""
    pins: dict[str, int] = {}
    for value in values:
        model, sep, version = value.rpartition("=")
        model = model.strip("/")
        if not sep or not model or not version.isdigit() or not servable(version):
            raise ConfigError(
                f"--pin must look like MODEL=VERSION (a model path and a version number, "
                f"e.g. resnet=7), got {value!r}"
            )
        model = "" if model == "." else model
        if model in pins and pins[model] != int(version):
            raise ConfigError(
                f"--pin names two versions of {model!r}: {pins[model]} and {int(version)}"
            )
        pins[model] = int(version)
    return pins


def parse_aliases(model: str, where: str, generation: int, data: bytes) -> Aliases:
    """The object's bytes -> its labels, or the one-line problem with them."""

    def bad(why: str) -> Aliases:
        return Aliases(model, where, generation, problem=f"{where}: {why}")

    if len(data) > ALIASES_MAX:
        return bad(f"larger than {ALIASES_MAX} bytes; not read as aliases")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return bad(f'not a JSON object of label -> version number ({exc}), e.g. {{"stable": 7}}')
    if not isinstance(doc, dict):
        return bad('not a JSON object of label -> version number, e.g. {"stable": 7}')
    labels = {}
    for label, value in doc.items():
        if not LABEL.fullmatch(label):
            return bad(
                f"label {label!r}: letters, digits, '_', '.' and '-' only (up to 63, starting "
                "with a letter or digit)"
            )
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not text.isdigit() or not servable(text):
            return bad(f"label {label!r}: {value!r} is not a version number")
        labels[label] = int(text)
    return Aliases(model, where, generation, labels)


def holds(
    pins: Mapping[str, int],
    aliases: Mapping[str, Aliases],
    listed: Mapping[str, Iterable[int]],
    on_disk: Mapping[str, Iterable[int]],
) -> tuple[dict[str, Hold], list[Problem]]:
    """Each model's hold, and the problems of those that cannot be followed. A named version
    must be in the bucket (`listed`) or on disk (`on_disk`): a version the bucket dropped but
    DEST still holds is a rollback target, kept while it is named."""
    out: dict[str, Hold] = {}
    problems: list[Problem] = []
    for model in sorted(set(pins) | set(aliases)):
        have = {*listed.get(model, ()), *on_disk.get(model, ())}
        pin, named = pins.get(model), aliases.get(model)
        name = model or "."
        if named is not None and named.problem:
            problems.append(Problem(model, f"{named.problem}; nothing of {name} changes"))
            continue
        if pin is not None and pin not in have:
            problems.append(
                Problem(
                    model,
                    f"--pin {name}={pin}: {name} has no version {pin} in the bucket or in "
                    f"DEST; nothing of {name} changes",
                )
            )
            continue
        labels = dict(named.labels) if named else {}
        missing = next(((k, v) for k, v in sorted(labels.items()) if v not in have), None)
        if named is not None and missing:
            label, version = missing
            problems.append(
                Problem(
                    model,
                    f"{named.where}: {label} names version {version}, which {name} has "
                    f"neither in the bucket nor in DEST; nothing of {name} changes",
                )
            )
            continue
        out[model] = Hold(model, pin, labels, named)
    return out, problems


@dataclass(frozen=True, slots=True)
class Serving:
    """What TF Serving is told to serve of one model (--tfs-config): `specific` versions, and
    labels for some of them."""

    versions: tuple[int, ...]
    labels: Mapping[str, int] = field(default_factory=dict)


def serving(hold: Hold | None, on_disk: Iterable[int], before: Iterable[int]) -> Serving | None:
    """A held model's versions to serve: the pin alone, or the newest on disk with the ones
    its aliases name; None (the server's "latest" policy) for a model without a hold, or whose
    pin is not on disk (naming a missing folder would unload what is served). `on_disk`: the
    model's versions on disk now; `before`: those already there when the pass began. A label
    goes only to a version of the second kind: TF Serving refuses a label to a version it
    has not loaded yet (serving_config.md), so a label follows its version one pass later."""
    if hold is None:
        return None
    have = set(on_disk)
    if hold.pin is not None:
        if hold.pin not in have:
            return None
        versions = {hold.pin}
    elif have:
        versions = {max(have)} | (have & hold.kept)
    else:
        return None
    loaded = set(before) & versions
    labels = {k: v for k, v in sorted(hold.labels.items()) if v in loaded}
    return Serving(tuple(sorted(versions)), labels)
