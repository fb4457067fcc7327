"""The archive formats a version may be uploaded as: one registry line each.

A line names the format's Form, the suffixes its object name may end in (`0002.tar.gz`),
and where its Extractor is (`module:name`, loaded on first use). layout reads the suffixes
from here, fetch stages through the Extractor, space asks it what an archive states it
extracts to: a new format is its extractor's module and a line below (and its Form member).
The naming rules need no extraction code, so this module imports none, and a process that
only plans (`plan`, `status`) loads no extractor.
"""

from __future__ import annotations

import functools
import importlib
import re
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, cast

if TYPE_CHECKING:
    from gcs_model_sync.formats.extractor import Extractor


class Form(StrEnum):
    """How a version is stored: a folder of objects, or one archive of a registered format.
    The value is part of a version's fingerprint (kept in the state file) and what `plan`
    shows: a member's value never changes."""

    ZIP = "zip"
    TAR = "tar"
    TGZ = "tar.gz"
    FOLDER = "folder"


class Archive(NamedTuple):
    """One registry line."""

    form: Form
    suffixes: tuple[str, ...]  # after the version number and a dot, without the dot
    extractor: str  # `module:name` of its Extractor

    def load(self) -> Extractor:
        return _load(self.extractor)


@functools.cache
def _load(where: str) -> Extractor:
    module, _, name = where.partition(":")
    return cast("Extractor", getattr(importlib.import_module(module), name))


FORMATS = (
    Archive(Form.ZIP, ("zip",), "gcs_model_sync.formats.zipformat:ZIP"),
    Archive(Form.TAR, ("tar",), "gcs_model_sync.formats.tarstream:TAR"),
    Archive(Form.TGZ, ("tar.gz", "tgz"), "gcs_model_sync.formats.tarstream:TGZ"),
)


class Registry:
    """The formats, looked up by an object's name or by a version's form."""

    def __init__(self, formats: tuple[Archive, ...]) -> None:
        self.formats = formats
        self.forms = {s: a.form for a in formats for s in a.suffixes}  # by suffix
        self._by_form = {a.form: a for a in formats}
        suffixes = sum(len(a.suffixes) for a in formats)
        if len(self.forms) < suffixes or len(self._by_form) < len(formats):
            raise ValueError("two archive formats claim one suffix or one form")
        alternatives = "|".join(map(re.escape, sorted(self.forms)))  # fullmatch: any order
        # An archive's object name: the version, then the suffix (a key of `forms`).
        self.name_re = re.compile(rf"([0-9]+)\.({alternatives})")

    def parse(self, name: str) -> tuple[str, Form] | None:
        """The version and form an archive's name (`0002.zip`) says; None for any other."""
        m = self.name_re.fullmatch(name)
        return None if m is None else (m.group(1), self.forms[m.group(2)])

    def extractor(self, form: Form) -> Extractor | None:
        """The form's Extractor; None for the folder form (its objects are its files)."""
        archive = self._by_form.get(form)
        return None if archive is None else archive.load()


REGISTRY = Registry(FORMATS)
