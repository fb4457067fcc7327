"""What an archive format is to the rest of the tool: one Extractor, given an ArchiveSource.

fetch offers the archive object as an ArchiveSource (read from its first byte, or a seekable
local copy) and never asks which format it is; space asks the Extractor what an archive's end
says it extracts to. archives.py registers one Extractor per format.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from gcs_model_sync.formats.extract import Writer
from gcs_model_sync.formats.stream import Readable


class ArchiveSource(Protocol):
    """One archive object, as fetch reads it."""

    def stream(self, extract_all: Callable[[Readable], None]) -> None:
        """Run `extract_all` over the object's bytes as they arrive, then check its checksum
        over every byte (a corrupt-looking archive whose checksum fails raises that instead,
        which is retried)."""

    def local(self) -> AbstractContextManager[Path]:
        """A seekable copy on the staging file system, checked, for formats that need random
        access; it does not outlive the block."""


class Extractor(Protocol):
    """How one archive format is staged, and what it states about its size."""

    def extract(self, source: ArchiveSource, writer: Writer) -> Writer:
        """Every member into `writer`, or VersionRejected; returns the Writer that holds
        them (a fresh one when the format had to start over)."""

    def tail_start(self, size: int) -> int | None:
        """Where the end that states an archive's extracted size starts in an object of
        `size` bytes; None when the format states none."""

    def stated_size(self, tail: bytes) -> int | None:
        """The extracted size those last bytes state; None when they do not tell."""
