"""The naming rules: which object keys are versions, of which model, in which form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs_model_sync.layout import (
    STATE_DIR,
    Entry,
    Form,
    Manifests,
    RemoteObject,
    fingerprint,
    group,
    manifests,
    model_files,
    servable,
    split_id,
    version_id,
)
from tests.support.plans import parse_key

P = "models/prod/"


@pytest.mark.parametrize(
    ("key", "model", "version", "form", "relpath"),
    [
        (f"{P}resnet/0002.zip", "resnet", "0002", Form.ZIP, ""),
        (f"{P}0002.zip", "", "0002", Form.ZIP, ""),
        (f"{P}7.tar", "", "7", Form.TAR, ""),
        (f"{P}m/12.tar.gz", "m", "12", Form.TGZ, ""),
        (f"{P}m/12.tgz", "m", "12", Form.TGZ, ""),
        (f"{P}a/b/c/3.zip", "a/b/c", "3", Form.ZIP, ""),
        (f"{P}resnet/0002/saved_model.pb", "resnet", "0002", Form.FOLDER, "saved_model.pb"),
        (
            f"{P}0002/variables/variables.index",
            "",
            "0002",
            Form.FOLDER,
            "variables/variables.index",
        ),
        # the first all-digit component is the version; what follows is inside it
        (f"{P}m/1/2/x.pb", "m", "1", Form.FOLDER, "2/x.pb"),
        (f"{P}m/1/3.zip", "m", "1", Form.FOLDER, "3.zip"),
        # version names are kept exactly, leading zeros included
        (f"{P}m/000000.zip", "m", "000000", Form.ZIP, ""),
        (f"{P}m/0/f", "m", "0", Form.FOLDER, "f"),
        (f"{P}m/{'9' * 40}.zip", "m", "9" * 40, Form.ZIP, ""),
        # unicode in model names and file names is fine
        (f"{P}modèle/5/données.bin", "modèle", "5", Form.FOLDER, "données.bin"),
        (f"{P}m v2/5.zip", "m v2", "5", Form.ZIP, ""),
    ],
)
def test_version_keys(key: str, model: str, version: str, form: Form, relpath: str) -> None:
    entry = parse_key(key, P)
    assert entry == Entry(RemoteObject(key, 0, 0), model, version, form, relpath, None)


@pytest.mark.parametrize(
    "key",
    [
        f"{P}README.md",
        f"{P}m/latest.txt",
        f"{P}m/v2/model.pb",  # "v2" is not all digits
        f"{P}m/0002",  # a bare number with no extension and nothing inside it
        f"{P}m/0002.rar",
        f"{P}m/0002.zip.bak",
        f"{P}m/0002.ZIP",
        f"{P}m/2.tar.bz2",
        f"{P}m/-2.zip",
        f"{P}m/2a.zip",
        f"{P}m/1.5.zip",
        f"{P}m/ 2.zip",
        f"{P}m/0002/",  # folder placeholder
        f"{P}m/",
        f"{P}0002/",
        P,
        f"{P}m/²/model.pb",  # superscript two is a digit to Unicode, not a version
        f"{P}m/²³.zip",
        f"{P}m/٣/model.pb",  # Arabic-Indic three
        f"{P}m/\uff13.zip",  # fullwidth three
        f"{P}m/1\n.zip",
    ],
)
def test_not_versions_are_ignored(key: str) -> None:
    assert parse_key(key, P) is None


@pytest.mark.parametrize(
    ("key", "problem_has"),
    [
        (f"{P}../0002.zip", "'..'"),
        (f"{P}m/../0002.zip", "'..'"),
        (f"{P}./0002.zip", "'.'"),
        (f"{P}/0002.zip", "''"),
        (f"{P}a//b/0002.zip", "''"),
        (f"{P}0002/../../etc/passwd", "'..'"),
        (f"{P}m/0002/a/../b", "'..'"),
        (f"{P}m/0002/./b", "'.'"),
        (f"{P}m/0002//b", "''"),
        (f"{P}m\x00/0002.zip", "NUL"),
        (f"{P}m/0002/a\x00b", "NUL"),
        (f"{P}m\\x/0002.zip", "backslash"),
        (f"{P}m/0002/..\\..\\x", "backslash"),
        (f"{P}{STATE_DIR}/0001.zip", STATE_DIR),
        (f"{P}{STATE_DIR}/0001/state.json", STATE_DIR),
    ],
)
def test_escaping_keys_are_flagged(key: str, problem_has: str) -> None:
    entry = parse_key(key, P)
    assert entry is not None
    assert entry.problem is not None
    assert problem_has in entry.problem


@pytest.mark.parametrize(
    "key",
    [
        f"{P}{'m' * 256}/1.zip",
        f"{P}{'é' * 128}/1.zip",  # 256 bytes in UTF-8
        f"{P}m/{'1' * 256}.zip",
        f"{P}m/{'1' * 256}/f",
        f"{P}m/1/{'f' * 256}",
        f"{P}m/1/d/{'f' * 300}/x",
    ],
)
def test_components_too_long_for_a_file_name_are_flagged(key: str) -> None:
    entry = parse_key(key, P)
    assert entry is not None
    assert entry.problem == "path component longer than 255 bytes"


def test_components_of_255_bytes_are_fine() -> None:
    entry = parse_key(f"{P}{'m' * 255}/{'1' * 255}/{'é' * 127}", P)
    assert entry is not None
    assert entry.problem is None


def test_state_dir_name_is_fine_below_the_top() -> None:
    entry = parse_key(f"{P}m/0001/{STATE_DIR}", P)
    assert entry is not None
    assert entry.problem is None
    entry = parse_key(f"{P}m/{STATE_DIR}/0001.zip", P)
    assert entry is not None
    assert entry.model == f"m/{STATE_DIR}"
    assert entry.problem is None


def test_key_relative_to_the_prefix() -> None:
    # with an empty prefix the whole key is relative
    entry = parse_key("m/3.zip", "")
    assert entry is not None
    assert (entry.model, entry.version) == ("m", "3")
    # a digit component inside the prefix does not count: only what follows the prefix does
    entry = parse_key("2024/models/m/3.zip", "2024/models/")
    assert entry is not None
    assert (entry.model, entry.version) == ("m", "3")


def test_entry_number_and_version_id() -> None:
    entry = parse_key(f"{P}m/0042.zip", P)
    assert entry is not None
    assert entry.number == 42
    assert version_id("m", "0042") == "m/0042"
    assert version_id("", "0042") == "0042"
    assert version_id("a/b", "1") == "a/b/1"


def entries_of(objs: list[RemoteObject]) -> list[Entry]:
    """Every versioned object's entry, in listing order."""
    grouped = [e for es in group(objs, P).values() for e in es]
    return sorted(grouped, key=lambda e: objs.index(e.obj))


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("0", True),
        ("0002", True),
        (str(2**63 - 1), True),
        ("000" + str(2**63 - 1), True),
        (str(2**63), False),
        ("99999999999999999999", False),
        ("9" * 5000, False),  # past int()'s digit limit: still an answer, never a ValueError
    ],
)
def test_a_version_number_is_servable_up_to_int64(version: str, ok: bool) -> None:
    assert servable(version) is ok


def test_grouping_keeps_the_listed_object_and_drops_non_versions() -> None:
    objs = [
        RemoteObject(f"{P}m/1.zip", 11, 100, "crc", "md5"),
        RemoteObject(f"{P}README.md", 12, 5),
        RemoteObject(f"{P}m/2/a.pb", 13, 7),
        RemoteObject(f"{P}m/2/", 14, 0),
    ]
    entries = entries_of(objs)
    assert [e.obj for e in entries] == [objs[0], objs[2]]
    assert [(e.model, e.version, e.form, e.relpath) for e in entries] == [
        ("m", "1", Form.ZIP, ""),
        ("m", "2", Form.FOLDER, "a.pb"),
    ]


def _entries(*objs: RemoteObject) -> list[Entry]:
    return entries_of(list(objs))


def test_fingerprint_follows_generations_and_form() -> None:
    a = fingerprint(Form.ZIP, _entries(RemoteObject(f"{P}m/1.zip", 5, 1)))
    assert a == fingerprint(Form.ZIP, _entries(RemoteObject(f"{P}m/1.zip", 5, 999)))
    assert a != fingerprint(Form.ZIP, _entries(RemoteObject(f"{P}m/1.zip", 6, 1)))
    assert a != fingerprint(Form.TGZ, _entries(RemoteObject(f"{P}m/1.tgz", 5, 1)))

    one = _entries(RemoteObject(f"{P}m/1/a", 1, 1), RemoteObject(f"{P}m/1/b", 2, 1))
    assert fingerprint(Form.FOLDER, one) == fingerprint(Form.FOLDER, list(reversed(one)))
    changed = _entries(RemoteObject(f"{P}m/1/a", 1, 1), RemoteObject(f"{P}m/1/b", 3, 1))
    assert fingerprint(Form.FOLDER, one) != fingerprint(Form.FOLDER, changed)
    renamed = _entries(RemoteObject(f"{P}m/1/a", 1, 1), RemoteObject(f"{P}m/1/c", 2, 1))
    assert fingerprint(Form.FOLDER, one) != fingerprint(Form.FOLDER, renamed)
    fewer = _entries(RemoteObject(f"{P}m/1/a", 1, 1))
    assert fingerprint(Form.FOLDER, one) != fingerprint(Form.FOLDER, fewer)


# --- properties -------------------------------------------------------------------------------

_component = st.one_of(
    st.sampled_from(["", ".", "..", "0", "007", "12", "m", "²", "1.zip", "2.tar.gz", "x\x00"]),
    st.text(max_size=6),
    st.from_regex(r"[0-9]{1,4}(\.zip|\.tar|\.tar\.gz|\.tgz)?", fullmatch=True),
)
_keys = st.one_of(st.text(), st.lists(_component, min_size=1, max_size=6).map("/".join))


@given(key=_keys, prefix=st.sampled_from(["", "p/", "models/prod/"]))
def test_parse_key_never_raises_and_never_returns_an_unflagged_escape(
    key: str, prefix: str
) -> None:
    entry = parse_key(prefix + key, prefix)
    if entry is None:
        return
    assert entry.version.isascii()
    assert entry.version.isdigit()
    assert entry.number == int(entry.version)
    assert (entry.relpath != "") == (entry.form is Form.FOLDER)
    if entry.problem is None:
        for path in (entry.model, entry.relpath):
            if not path:
                continue
            for part in path.split("/"):
                assert part not in ("", ".", "..")
                assert "\x00" not in part
                assert "\\" not in part
                assert len(part.encode("utf-8", "surrogatepass")) <= 255
        assert entry.model.split("/")[0] != STATE_DIR
        # the pieces rebuild the key exactly
        rebuilt = "/".join(p for p in (entry.model, entry.version) if p)
        if entry.form is Form.FOLDER:
            assert prefix + rebuilt + "/" + entry.relpath == prefix + key
        else:
            assert (prefix + key).startswith(prefix + rebuilt + ".")


@pytest.mark.parametrize(
    ("model", "version"), [("m", "0002"), ("", "7"), ("a/b/c", "3"), ("team/ranker", "10")]
)
def test_split_id_is_the_inverse_of_version_id(model: str, version: str) -> None:
    assert split_id(version_id(model, version)) == (model, version)


def test_manifests_pair_with_the_version_beside_them_and_never_its_own_files() -> None:
    objs = [RemoteObject(f"p/{k}", 1, 1) for k in ("m/2.sha256", "m/2.sig", "m/3/4.sig", "5.sig")]
    found = manifests(objs, "p/")
    assert found == {
        ("m", "2"): Manifests(objs[0], objs[1]),
        ("", "5"): Manifests(signature=objs[3]),
    }  # m/3/4.sig is a file of folder version m/3
    files = model_files([*objs, RemoteObject("p/m/labels.txt", 1, 1)], "p/", ["m"])
    assert [f.name for f in files] == ["labels.txt"]


def test_a_changed_manifest_changes_the_fingerprint() -> None:
    es = _entries(RemoteObject("p/m/1.zip", 7, 1))
    bare = fingerprint(Form.ZIP, es)
    signed = fingerprint(Form.ZIP, es, Manifests(signature=RemoteObject("p/m/1.sig", 1, 1)))
    resigned = fingerprint(Form.ZIP, es, Manifests(signature=RemoteObject("p/m/1.sig", 2, 1)))
    assert bare == "zip:7"  # unchanged for a version with no manifests
    assert len({bare, signed, resigned}) == 3
