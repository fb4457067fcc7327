"""--config FILE: options read from a TOML or YAML file, beneath flags and variables.

A key is an option's name (`keep`, `model_files`; a dash reads as an underscore), its value
written as on the command line (`settle: 1m`, `slice_size: 16M`), a list where the option
repeats. The top level sets the process's values; `sources:` lists sources, each a table with
`source`, `dest` (a sub-folder of --dest) and any option that is not process-wide. Which
value wins: a flag, then its variable, then the source's entry, then the top level, then the
option's default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs_model_sync.config import Config
from gcs_model_sync.errors import ConfigError
from gcs_model_sync.options import OPTIONS, PROCESS_WIDE
from gcs_model_sync.sources import Sources, overlap, sub_folder

NAMES = frozenset(o.name for o in OPTIONS) - {"config"}
SUFFIXES = (".toml", ".yaml", ".yml")

# An option's name and its value as the file wrote it -> the value as the flag gives it.
Convert = Callable[[str, Any], Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of `sources:`: its sub-folder of --dest and its options, `source` included."""

    dest: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    top: dict[str, Any]
    sources: tuple[Entry, ...] | None  # None: the file lists no sources


def load(path: Path) -> Settings:
    """Read and check `path`: its format from its suffix, every key an option's name."""
    doc = _parse(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"--config {path}: expected a table of options at the top")
    top = _keys(path, doc, "", allowed=NAMES | {"sources"})
    raw = top.pop("sources", None)
    if raw is None:
        return Settings(path, top, None)
    if not isinstance(raw, list) or not raw or not all(isinstance(e, dict) for e in raw):
        raise ConfigError(f"--config {path}: sources must be a list of tables")
    if "source" in top:
        raise ConfigError(f"--config {path}: source is given per entry of sources, not on top")
    entries = tuple(_entry(path, i, e) for i, e in enumerate(raw))
    if clash := overlap([e.dest for e in entries]):
        a, b = clash
        what = "the same folder" if a == b else "nested"
        raise ConfigError(f"--config {path}: sources' dest {a!r} and {b!r} are {what}")
    return Settings(path, top, entries)


def _parse(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"--config {path}: name it .toml, .yaml or .yml to say its format")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"--config {path}: {why}") from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None
    import yaml  # only for a YAML file: `--help` and TOML users never load it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be read"
        raise ConfigError(f"--config {path}: not valid YAML{at}: {problem}") from None


def _keys(
    path: Path, table: Mapping[Any, Any], where: str, allowed: frozenset[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = str(key).replace("-", "_")
        if name not in allowed:
            if where and name in PROCESS_WIDE:
                raise ConfigError(
                    f"--config {path}: {where}{name!r} is process-wide: set it at the top of "
                    "the file, or as a flag"
                )
            raise ConfigError(
                f"--config {path}: {where}unknown key {name!r} (a key is an option's name: "
                "keep for --keep)"
            )
        out[name] = value
    return out


def _entry(path: Path, index: int, table: dict[Any, Any]) -> Entry:
    where = f"sources[{index}]: "
    values = _keys(path, table, where, allowed=(NAMES - PROCESS_WIDE) | {"dest"})
    for needed in ("source", "dest"):
        if values.get(needed) is None:
            raise ConfigError(f"--config {path}: {where}{needed} is missing")
    try:
        dest = sub_folder(values.pop("dest"))
    except ConfigError as exc:
        raise ConfigError(f"--config {path}: {where}{exc}") from None
    return Entry(dest, values)


def layered(
    opts: dict[str, Any], given: set[str], settings: Settings, convert: Convert
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]] | None]:
    """The options of the top level, and of each source (its name, its options; None when the
    file lists none), by precedence: what is `given` (a flag or a variable) over the source's
    entry over the file's top level over the default in `opts`."""

    def over(into: dict[str, Any], values: Mapping[str, Any], where: str) -> dict[str, Any]:
        for name, raw in values.items():
            if name in into and name not in given and raw is not None:
                try:
                    into[name] = convert(name, raw)
                except ConfigError as exc:
                    raise ConfigError(f"--config {settings.path}: {where}{name}: {exc}") from None
        return into

    top = over(dict(opts), settings.top, "")
    if settings.sources is None:
        return top, None
    if "source" in given:
        raise ConfigError(
            f"--source and --config {settings.path}'s sources: give the sources one way"
        )
    if not top.get("dest"):
        raise ConfigError(f"--dest is required: the folder the sources of {settings.path} go in")
    each = []
    for i, entry in enumerate(settings.sources):
        mine = over(dict(top), entry.values, f"sources[{i}]: ")
        mine["dest"] = str(Path(str(top["dest"])) / entry.dest)
        each.append((entry.dest, mine))
    return top, each


def given(ctx: Any) -> set[str]:
    """The options given as a flag or a variable: those a config file does not override."""
    from typer._click.core import ParameterSource

    said = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return {name for name in ctx.params if ctx.get_parameter_source(name) in said}


def reader(ctx: Any) -> Convert:
    """A value as a config file wrote it -> the value the flag would give, through the same
    parameter (so `1m`, `16M`, `true` read alike in both)."""
    from typer._click.exceptions import BadParameter

    params = {p.name: p for p in ctx.command.params}

    def convert(name: str, raw: Any) -> Any:
        param = params[name]
        if param.multiple:  # a repeatable option: a list, or one value as a list of one
            value: Any = [_text(v) for v in (raw if isinstance(raw, list) else [raw])]
        elif isinstance(raw, list):
            raise ConfigError("takes one value, not a list")
        else:
            value = _text(raw)
        try:
            return param.process_value(ctx, value)
        except BadParameter as exc:
            raise ConfigError(f"{raw!r}: {exc.message}") from None

    return convert


def _text(value: Any) -> str:
    """A file's scalar as the command line would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"expected a value as on the command line, got {type(value).__name__}")


def sources(
    opts: dict[str, Any], ctx: Any, build_config: Callable[[dict[str, Any]], Config]
) -> Sources:
    """The sources a command runs: the single one of its options, or with --config those of
    the file beneath the flags and variables (`ctx` says which options were given), each
    made a Config by `build_config` (the CLI's one place options become one)."""
    path = opts.get("config")
    if path is None:
        return Sources.single(build_config(opts))
    settings = load(Path(path).expanduser())
    top, each = layered(opts, given(ctx), settings, reader(ctx))
    if each is None:
        return Sources.single(build_config(top))
    configs = []
    for name, mine in each:
        try:
            configs.append(build_config(mine))
        except ConfigError as exc:
            raise ConfigError(f"--config {path}: source {name}: {exc}") from None
    shared = [c.tfs_config for c in configs if c.tfs_config is not None]
    if len(shared) != len(set(shared)):
        raise ConfigError(f"--config {path}: each source needs a --tfs-config file of its own")
    base = Path(str(top["dest"])).expanduser().absolute()
    return Sources(tuple(configs), tuple(name for name, _ in each), base)
