"""What one process mirrors: one Config per source, each named by its sub-folder of --dest.

Without --config (or with a file that lists no `sources:`) there is one source, unnamed, into
--dest itself, exactly as always. With `sources:`, each source's Config carries the same
process-wide settings (options.PROCESS_WIDE) and its own dest, `base/<name>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gcs_model_sync.config import Config
from gcs_model_sync.errors import ConfigError
from gcs_model_sync.layout import STATE_DIR


@dataclass(frozen=True, slots=True)
class Sources:
    configs: tuple[Config, ...]
    names: tuple[str, ...]  # "" for the single source of a plain command line
    base: Path | None = None  # the --dest the named sources sit in; None: a single source

    @classmethod
    def single(cls, config: Config) -> Sources:
        return cls((config,), ("",))

    @property
    def first(self) -> Config:
        """Where the process-wide settings are read: every source holds the same."""
        return self.configs[0]

    @property
    def many(self) -> bool:
        return self.base is not None

    def __iter__(self) -> Iterator[tuple[str, Config]]:
        return iter(zip(self.names, self.configs, strict=True))


def sub_folder(text: object) -> str:
    """A source's `dest` as the relative POSIX path it names below --dest (`vision`,
    `team/nlp`); a ConfigError for what would land outside it or on the tool's own folder."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("dest must be a sub-folder of --dest, like vision or team/nlp")
    path = PurePosixPath(text)
    parts = [p for p in path.parts if p != "."]
    if path.is_absolute() or ".." in parts or not parts:
        raise ConfigError(f"dest {text!r} must be a folder inside --dest (relative, no ..)")
    if parts[0] == STATE_DIR:
        raise ConfigError(f"dest {text!r} is the tool's own folder under --dest")
    return "/".join(parts)


def overlap(subs: list[str]) -> tuple[str, str] | None:
    """Two sub-folders of which one is, or holds, the other: they would prune each other."""
    for i, a in enumerate(subs):
        for b in subs[i + 1 :]:
            pa, pb = PurePosixPath(a).parts, PurePosixPath(b).parts
            if pa[: len(pb)] == pb or pb[: len(pa)] == pa:
                return a, b
    return None
