"""The archive registry is the one list of formats: what layout recognises is what fetch and
space can dispatch, suffix for suffix."""

from __future__ import annotations

import pytest

from gcs_model_sync.formats import tarstream, zipformat
from gcs_model_sync.formats.archives import FORMATS, REGISTRY, Archive, Form, Registry
from gcs_model_sync.layout import RemoteObject, model_files
from tests.support.plans import parse_key

P = "models/"
SUFFIXES = [(a.form, s) for a in FORMATS for s in a.suffixes]


@pytest.mark.parametrize(("form", "suffix"), SUFFIXES)
def test_every_registered_suffix_is_a_version_in_layout_and_has_an_extractor(
    form: Form, suffix: str
) -> None:
    entry = parse_key(f"{P}m/0002.{suffix}", P)
    assert entry is not None
    assert (entry.model, entry.version, entry.form) == ("m", "0002", form)
    assert REGISTRY.extractor(entry.form) is next(a.load() for a in FORMATS if a.form is form)
    objs = [RemoteObject(f"{P}m/0002.{suffix}", 1, 1), RemoteObject(f"{P}m/labels.txt", 1, 1)]
    assert [f.name for f in model_files(objs, P, ["m"])] == ["labels.txt"]  # never a model file


def test_the_registered_formats_are_the_archive_forms() -> None:
    assert {a.form for a in FORMATS} == set(Form) - {Form.FOLDER}
    assert REGISTRY.extractor(Form.FOLDER) is None  # its objects are its files
    assert sorted(s for _, s in SUFFIXES) == ["tar", "tar.gz", "tgz", "zip"]


@pytest.mark.parametrize(
    "name", ["0002.tar.bz2", "0002.gz", "0002.zip.tmp", "x0002.zip", "0002.ZIP", "02.", ".zip"]
)
def test_other_names_are_no_archive(name: str) -> None:
    assert REGISTRY.parse(name) is None
    assert parse_key(f"{P}m/{name}", P) is None


def test_a_zip_tells_its_extracted_size_from_its_end_and_a_tar_does_not() -> None:
    assert zipformat.ZIP.tail_start(21) is None  # shorter than a zip's end record
    assert zipformat.ZIP.tail_start(22) == 0
    assert zipformat.ZIP.tail_start(10 * zipformat.TAIL) == 9 * zipformat.TAIL
    for tar in (tarstream.TAR, tarstream.TGZ):
        assert tar.tail_start(10**9) is None
        assert tar.stated_size(b"PK\x05\x06" + bytes(18)) is None


def test_a_toy_format_is_recognised_once_it_has_a_line() -> None:
    toy = Archive(Form.ZIP, ("toy",), "gcs_model_sync.formats.zipformat:ZIP")
    assert Registry((toy,)).parse("0003.toy") == ("0003", Form.ZIP)
    assert REGISTRY.parse("0003.toy") is None


@pytest.mark.parametrize(
    "clash",
    [
        # a second line for the zip form
        Archive(Form.ZIP, ("jar",), "gcs_model_sync.formats.zipformat:ZIP"),
        # a suffix the tar.gz line has
        Archive(Form.TAR, ("tgz",), "gcs_model_sync.formats.tarstream:TAR"),
    ],
)
def test_two_lines_cannot_claim_one_suffix_or_one_form(clash: Archive) -> None:
    with pytest.raises(ValueError, match="claim one suffix or one form"):
        Registry((*FORMATS[:2], clash, FORMATS[2]))


def test_the_naming_rules_load_no_extractor() -> None:
    """layout reads only the registry's suffixes: planning never imports extraction code."""
    import subprocess
    import sys

    code = (
        "import sys, gcs_model_sync.layout, gcs_model_sync.formats.archives as a;"
        "a.REGISTRY.parse('0002.zip');"
        "print(sorted(m for m in sys.modules if m.rpartition('.')[2] in"
        " ('zipformat', 'tarstream', 'zipstream', 'extract')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
