"""Safe extraction: byte-exact on good archives, VersionRejected on hostile or broken ones,
and never a byte written outside the staging root."""

from __future__ import annotations

import errno
import io
import os
import random
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats import zipstream
from gcs_model_sync.formats.extract import Limits, Writer, content_root, member_path
from gcs_model_sync.formats.tarstream import extract as extract_tar
from gcs_model_sync.formats.zipformat import extract_zip
from gcs_model_sync.local.durability import remove_tree

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # zips we build

WHERE = "gs://bkt/models/m/0007.zip"
VERSION = "0007"  # the version WHERE names, as spelled
# "zipstream" is a zip extracted while it downloads (gcs_model_sync.formats.zipstream), falling back
# to the seekable path exactly as fetch does; every case must hold for both zip readers.
KINDS = ["zip", "zipstream", "tar", "tar.gz"]
ZIPS = ("zip", "zipstream")


def noise(size: int, seed: int) -> bytes:
    """Incompressible bytes, the same on every run so that failures reproduce."""
    return random.Random(seed).randbytes(size)


# --- building archives ------------------------------------------------------------------------


@dataclass(frozen=True)
class M:
    """One archive member: a file, a folder, a symlink, a hard link, or a special file."""

    name: str
    data: bytes = b""
    kind: str = "file"  # file, dir, symlink, hardlink, fifo, chr, blk
    target: str = ""
    mode: int = 0o644


def make_zip(members: Sequence[M]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in members:
            info = zipfile.ZipInfo(m.name + ("/" if m.kind == "dir" else ""))
            info.compress_type = zipfile.ZIP_DEFLATED
            if m.kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
                zf.writestr(info, b"")
            elif m.kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, m.target.encode())
            elif m.kind == "fifo":
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
                zf.writestr(info, b"")
            elif m.kind == "chr":
                info.external_attr = (stat.S_IFCHR | 0o644) << 16
                zf.writestr(info, b"")
            else:
                assert m.kind == "file", m
                info.external_attr = (stat.S_IFREG | m.mode) << 16
                zf.writestr(info, m.data)
    return buf.getvalue()


_TAR_TYPES = {
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
}


def make_tar(members: Sequence[M], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode = m.mode
            if m.kind == "file":
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
                continue
            info.type = _TAR_TYPES[m.kind]
            info.linkname = m.target
            tf.addfile(info)
    return buf.getvalue()


def make(kind: str, members: Sequence[M]) -> bytes:
    if kind in ("zip", "zipstream"):
        return make_zip(members)
    return make_tar(members, gz=kind == "tar.gz")


# --- a sandbox that notices any write outside the root ----------------------------------------


def _snapshot(base: Path, skip: Path) -> dict[str, tuple[str, bytes, int]]:
    """Everything under `base` except the `skip` subtree: type, content or link target, nlink."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            p = here / name
            st_ = p.lstat()
            if stat.S_ISLNK(st_.st_mode):
                entry = ("link", os.readlink(p).encode(), st_.st_nlink)
            elif stat.S_ISDIR(st_.st_mode):
                entry = ("dir", b"", 0)
            else:
                entry = ("file", p.read_bytes(), st_.st_nlink)
            seen[str(p.relative_to(base))] = entry
    return seen


class Sandbox:
    """base/{secret, work/{tree = the root}}; the archive itself lives elsewhere."""

    def __init__(self, base: Path, archives: Path) -> None:
        self.base, self.archives = base, archives
        self.root = base / "work" / "tree"
        (base / "work").mkdir(parents=True)
        (base / "secret").write_bytes(b"do not touch")
        (base / "work" / "archive.bin").write_bytes(b"neighbour")
        archives.mkdir(parents=True, exist_ok=True)
        self.before = _snapshot(base, self.root)

    def run(self, kind: str, data: bytes, max_bytes: int = 10**6) -> Path:
        """Extract, check containment whatever happened, return the content root."""
        writer = Writer(self.root, Limits(max_bytes, WHERE))
        try:
            if kind == "zipstream":
                try:
                    zipstream.extract(io.BytesIO(data), writer, WHERE)
                except zipstream.Unstreamable:
                    remove_tree(self.root)
                    writer = Writer(self.root, Limits(max_bytes, WHERE))
                    kind = "zip"
            if kind == "zip":
                archive = self.archives / "a.zip"
                archive.write_bytes(data)
                extract_zip(archive, writer, WHERE)
            elif kind != "zipstream":
                extract_tar(io.BytesIO(data), writer, WHERE, gz=kind == "tar.gz")
            content = content_root(self.root, WHERE, VERSION)
        finally:
            self.assert_untouched()
        assert_links_inside(content)
        return content

    def assert_untouched(self) -> None:
        """Nothing outside the root was created, changed, or gained a hard link."""
        assert _snapshot(self.base, self.root) == self.before

    def reject(self, kind: str, data: bytes, max_bytes: int = 10**6) -> str:
        with pytest.raises(VersionRejected) as info:
            self.run(kind, data, max_bytes)
        message = str(info.value)
        assert message.startswith(WHERE + ":"), message
        assert "\n" not in message
        return message


def assert_links_inside(content: Path) -> None:
    """Every link in an accepted version resolves inside it, wherever the folder is moved."""
    moved = content.parent / "moved-elsewhere"
    content.rename(moved)
    try:
        real_root = os.path.realpath(moved)
        for dirpath, dirnames, filenames in os.walk(moved):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    try:
                        real = os.path.realpath(p, strict=True)
                    except OSError as exc:
                        if exc.errno == errno.ELOOP:
                            continue  # `0 -> 0//` reaches nothing (non-strict realpath says /)
                        real = os.path.realpath(p)  # dangling: where it would point
                    assert real == real_root or real.startswith(real_root + os.sep), (p, real)
    finally:
        moved.rename(content)


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "box", tmp_path / "archives")


@contextmanager
def fresh_box() -> Iterator[Sandbox]:
    """For hypothesis tests, which cannot share a function-scoped tmp_path between examples."""
    with tempfile.TemporaryDirectory() as tmp:
        yield Sandbox(Path(tmp) / "box", Path(tmp) / "archives")


def tree(root: Path) -> dict[str, bytes | str]:
    """Files as bytes, links as '-> target', folders as '/'."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "/"
            else:
                out[rel] = p.read_bytes()
    return out


SAMPLE = {
    "saved_model.pb": bytes(range(256)) * 40,
    "variables/variables.index": b"idx",
    "variables/variables.data-00000-of-00001": noise(3000, 1),
    "assets/empty.txt": b"",
    "assets/noms/données é.txt": "ünïcødé".encode(),
}


# --- good archives ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_extracts_byte_exact(box: Sandbox, kind: str) -> None:
    members = [M(name, data) for name, data in SAMPLE.items()]
    content = box.run(kind, make(kind, members))
    assert content == box.root
    got = {k: v for k, v in tree(content).items() if v != "/"}
    assert got == SAMPLE


@pytest.mark.parametrize("kind", KINDS)
def test_lone_top_folder_named_as_the_version_is_stripped(box: Sandbox, kind: str) -> None:
    """The seed's `0002/` inside `0002.zip`: here `0007/` inside `0007.zip`."""
    members = [M(VERSION, kind="dir")] + [M(f"{VERSION}/{n}", d) for n, d in SAMPLE.items()]
    content = box.run(kind, make(kind, members))
    assert content == box.root / VERSION
    assert {k: v for k, v in tree(content).items() if v != "/"} == SAMPLE


@pytest.mark.parametrize("top", ["7", "007", "00007"])
@pytest.mark.parametrize("kind", KINDS)
def test_lone_top_folder_of_the_version_number_without_its_own_entry_is_stripped(
    box: Sandbox, kind: str, top: str
) -> None:
    content = box.run(kind, make(kind, [M(f"{top}/a/b.pb", b"1"), M(f"{top}/c", b"2")]))
    assert content == box.root / top
    assert tree(content) == {"a": "/", "a/b.pb": b"1", "c": b"2"}


@pytest.mark.parametrize(
    "top", ["model.onnx", "model.savedmodel", "variables", "resnet", "top", "0002", "70", "7a"]
)
@pytest.mark.parametrize("kind", KINDS)
def test_lone_top_folder_of_another_name_is_content_and_kept(
    box: Sandbox, kind: str, top: str
) -> None:
    """Triton's `model.onnx/`, a SavedModel's `variables/`, another version's number: the
    version's own files, which a model server finds only where the archive put them."""
    content = box.run(kind, make(kind, [M(f"{top}/a/b.pb", b"1"), M(f"{top}/c", b"2")]))
    assert content == box.root
    assert tree(content) == {top: "/", f"{top}/a": "/", f"{top}/a/b.pb": b"1", f"{top}/c": b"2"}


def test_folder_form_is_never_stripped(tmp_path: Path) -> None:
    """A folder form's objects are its files: `m/7/7/x` and `m/1/model.savedmodel/…` stay."""
    for top in ("7", "model.savedmodel"):
        staged = tmp_path / top / "tree"
        (staged / top).mkdir(parents=True)
        (staged / top / "saved_model.pb").write_bytes(b"1")
        assert content_root(staged, WHERE, None) == staged


@pytest.mark.parametrize("kind", KINDS)
def test_root_is_kept_when_the_top_holds_more_than_one_folder(box: Sandbox, kind: str) -> None:
    content = box.run(kind, make(kind, [M("a/x", b"1"), M("b/y", b"2")]))
    assert content == box.root


@pytest.mark.parametrize("kind", KINDS)
def test_root_is_kept_for_a_lone_file(box: Sandbox, kind: str) -> None:
    content = box.run(kind, make(kind, [M("saved_model.pb", b"1")]))
    assert content == box.root
    assert tree(content) == {"saved_model.pb": b"1"}


@pytest.mark.parametrize("kind", KINDS)
def test_dot_prefixes_and_folder_entries_are_normalised(box: Sandbox, kind: str) -> None:
    members = [M("./", kind="dir"), M("./a", kind="dir"), M("./a/b.pb", b"x"), M("c//d", b"y")]
    content = box.run(kind, make(kind, members))
    assert tree(content) == {"a": "/", "a/b.pb": b"x", "c": "/", "c/d": b"y"}


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_executable_bit_is_kept(box: Sandbox, kind: str) -> None:
    content = box.run(kind, make(kind, [M("run.sh", b"#!", mode=0o755), M("d.txt", b"d")]))
    assert os.stat(content / "run.sh").st_mode & 0o111
    assert not os.stat(content / "d.txt").st_mode & 0o111


@pytest.fixture
def umask_077() -> Iterator[None]:
    """A umask that would leave every file 0600 and every folder 0700 to another user."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


FILE, EXE, DIR = "-rw-r--r--", "-rwxr-xr-x", "drwxr-xr-x"


def modes(root: Path) -> dict[str, str]:
    """`ls -l` modes of the root (".") and of everything below it but links."""
    out = {".": stat.filemode(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                out[str(p.relative_to(root))] = stat.filemode(p.stat().st_mode)
    return out


@pytest.mark.usefixtures("umask_077")
@pytest.mark.parametrize("kind", KINDS)
def test_modes_are_set_whatever_the_umask(box: Sandbox, kind: str) -> None:
    """Files 0644, or 0755 when the archive gives any execute bit; folders 0755."""
    members = [
        M("run.sh", b"#!", mode=0o755),
        M("bin/owner-only", b"#!", mode=0o700),  # its folder has no entry of its own
        M("setuid", b"#!", mode=0o4755),
        M("secret", b"s", mode=0o600),
        M("shared", b"s", mode=0o666),
        M("private", kind="dir", mode=0o700),
        M("private/f", b"f", mode=0o400),
        M("ln", kind="symlink", target="run.sh"),
    ]
    content = box.run(kind, make(kind, members))
    assert modes(content) == {
        ".": DIR,
        "run.sh": EXE,
        "bin": DIR,
        "bin/owner-only": EXE,
        "setuid": EXE,
        "secret": FILE,
        "shared": FILE,
        "private": DIR,
        "private/f": FILE,
    }


@pytest.mark.usefixtures("umask_077")
def test_folder_form_files_are_0644_and_folders_0755_whatever_the_umask(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    writer = Writer(root, Limits(10**6, WHERE))
    writer.file("saved_model.pb", io.BytesIO(b"pb"))  # objects carry no mode
    writer.file("variables/variables.index", io.BytesIO(b"idx"))
    assert modes(root) == {
        ".": DIR,
        "saved_model.pb": FILE,
        "variables": DIR,
        "variables/variables.index": FILE,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_links_inside_the_version_are_kept(box: Sandbox, kind: str) -> None:
    members = [
        M("v/data", b"payload"),
        M("latest", kind="symlink", target="v/data"),
        M("v/sib", kind="symlink", target="../v/data"),
        M("here", kind="symlink", target="."),
        M("vars", kind="symlink", target="v"),
        M("model/weights", kind="symlink", target="../vars/data"),  # up first, then through a link
    ]
    if kind not in ZIPS:
        members.append(M("hard", kind="hardlink", target="v/data"))
    content = box.run(kind, make(kind, members))
    assert (content / "latest").read_bytes() == b"payload"
    assert (content / "v" / "sib").read_bytes() == b"payload"
    assert (content / "model" / "weights").read_bytes() == b"payload"
    if kind not in ZIPS:
        assert (content / "hard").read_bytes() == b"payload"
        assert os.stat(content / "hard").st_ino == os.stat(content / "v" / "data").st_ino


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_trailing_zero_blocks_and_padding_are_fine(box: Sandbox, kind: str) -> None:
    data = make_tar([M("a", b"1")]) + b"\0" * 4096
    if kind == "tar.gz":
        import gzip

        data = gzip.compress(data)
    assert tree(box.run(kind, data)) == {"a": b"1"}


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("members", "says"),
    [
        ([M("/etc/evil", b"x")], "absolute"),
        ([M("ok", b"1"), M("/abs/dir", kind="dir")], "absolute"),
        ([M("../evil", b"x")], "escapes"),
        ([M("a/../../evil", b"x")], "escapes"),
        ([M("a/b/../../../evil", b"x")], "escapes"),
        ([M("..", kind="dir")], "escapes"),
        ([M("\\evil", b"x")], "absolute"),
        ([M("a\\..\\..\\evil", b"x")], "escapes"),
        ([M("C:/evil", b"x")], "absolute"),
        ([M("ln", kind="symlink", target="/etc/passwd")], "leaves"),
        ([M("ln", kind="symlink", target="../secret")], "leaves"),
        ([M("ln", kind="symlink", target="../../secret")], "leaves"),
        ([M("a/ln", kind="symlink", target="../../secret")], "leaves"),
        ([M("a/ln", kind="symlink", target="b/../../../x")], "leaves"),
        ([M("ln", kind="symlink", target="..")], "leaves"),
        # writing through a link, even one that stays inside
        ([M("d", kind="symlink", target="."), M("d/x", b"1")], "link"),
        ([M("a", kind="dir"), M("d", kind="symlink", target="a"), M("d/x", b"1")], "link"),
        # duplicates, whatever the member kinds
        ([M("a", b"1"), M("a", b"2")], "duplicate"),
        ([M("a", kind="dir"), M("a", b"2")], "duplicate"),
        ([M("a", b"1"), M("a", kind="symlink", target="b")], "duplicate"),
        ([M("a/b", b"1"), M("./a//b", b"2")], "duplicate"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_hostile_members_are_rejected(box: Sandbox, kind: str, members: list[M], says: str) -> None:
    message = box.reject(kind, make(kind, members))
    if kind == "zipstream" and says == "link":
        # a streamed zip learns which members are links only from the central directory at
        # the end, so a path under a link is refused earlier, as a clash with that member
        assert "link" in message or "duplicate member" in message
    else:
        assert says in message


@pytest.mark.parametrize(
    "members",
    [
        # each link stays inside on its own; together `t` points at the parent of the root
        [M("s", kind="symlink", target="."), M("t", kind="symlink", target="s/..")],
        # the order does not help either: the link it goes through comes later
        [M("t", kind="symlink", target="s/.."), M("s", kind="symlink", target=".")],
        [
            M("s", kind="symlink", target="."),
            M("t", kind="symlink", target="s/.."),
            M("u", kind="symlink", target="t/.."),
        ],
        [
            M("a", kind="dir"),
            M("a/s", kind="symlink", target=".."),
            M("t", kind="symlink", target="a/s/.."),
        ],
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_chained_links_that_leave_the_folder_are_rejected(
    box: Sandbox, kind: str, members: list[M]
) -> None:
    assert "leaves" in box.reject(kind, make(kind, members))


@pytest.mark.parametrize("kind", KINDS)
def test_link_that_leaves_once_the_top_folder_is_stripped_is_rejected(
    box: Sandbox, kind: str
) -> None:
    """`0007/ln -> ../0001/x` stays inside the archive but not inside the version folder."""
    members = [M("0007/a", b"1"), M("0007/ln", kind="symlink", target="../0001/x")]
    assert "leaves" in box.reject(kind, make(kind, members))


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
@pytest.mark.parametrize(
    "members",
    [
        [M("h", kind="hardlink", target="../secret")],
        [M("h", kind="hardlink", target="/etc/passwd")],
        [M("h", kind="hardlink", target="nope")],
        [M("h", kind="hardlink", target="")],
        [M("d", kind="dir"), M("h", kind="hardlink", target="d")],
        [M("f", b"x"), M("l", kind="symlink", target="f"), M("h", kind="hardlink", target="l")],
        # through links that each stay inside: s -> root, t -> root/.. (the work folder)
        [
            M("s", kind="symlink", target="."),
            M("t", kind="symlink", target="s/.."),
            M("h", kind="hardlink", target="t/archive.bin"),
        ],
        [
            M("s", kind="symlink", target="."),
            M("t", kind="symlink", target="s/.."),
            M("u", kind="symlink", target="t/.."),
            M("h", kind="hardlink", target="u/secret"),
        ],
    ],
)
def test_hard_links_without_a_target_inside_are_rejected(
    box: Sandbox, kind: str, members: list[M]
) -> None:
    box.reject(kind, make(kind, members))


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
@pytest.mark.parametrize("special", ["fifo", "chr", "blk"])
def test_special_files_in_tar_are_rejected(box: Sandbox, kind: str, special: str) -> None:
    message = box.reject(kind, make(kind, [M("ok", b"1"), M("dev", kind=special)]))
    assert "special file" in message


@pytest.mark.parametrize("special", ["fifo", "chr"])
def test_special_files_in_zip_are_rejected(box: Sandbox, special: str) -> None:
    assert "not a regular file" in box.reject("zip", make_zip([M("dev", kind=special)]))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "members",
    [
        [M("a", b"1"), M("a/b", b"2")],  # a file where a folder must go
        [M("a", b"1"), M("a", kind="dir")],
        [M("a", kind="symlink", target="b"), M("a", kind="dir")],
        [M("x" * 300, b"1")],  # longer than any file system allows
        [M("d/" + "x" * 300 + "/f", b"1")],
    ],
    ids=["file-then-child", "file-then-dir", "link-then-dir", "long-name", "long-folder"],
)
def test_members_the_file_system_refuses_are_rejected(
    box: Sandbox, kind: str, members: list[M]
) -> None:
    box.reject(kind, make(kind, members))


@pytest.mark.parametrize("kind", KINDS)
def test_a_link_with_an_empty_target_is_rejected(box: Sandbox, kind: str) -> None:
    box.reject(kind, make(kind, [M("ok", b"1"), M("ln", kind="symlink", target="")]))


@pytest.mark.parametrize(
    "data",
    [b"", b"not a zip at all", b"PK\x03\x04" + b"\0" * 40, noise(2000, 2)],
    ids=["empty", "text", "header-only", "random"],
)
def test_corrupt_zip_is_rejected(box: Sandbox, data: bytes) -> None:
    assert "corrupt" in box.reject("zip", data)


@pytest.mark.parametrize("keep", [1 / 3, 0.9, 0.99])
def test_truncated_zip_is_rejected(box: Sandbox, keep: float) -> None:
    data = make_zip([M(n, d) for n, d in SAMPLE.items()])
    assert "corrupt" in box.reject("zip", data[: int(len(data) * keep)])


def test_zip_with_a_damaged_member_is_rejected(box: Sandbox) -> None:
    data = bytearray(make_zip([M("a", noise(5000, 3))]))
    data[100:110] = bytes(10)  # inside the compressed bytes of the only member
    box.reject("zip", bytes(data))


def test_encrypted_zip_member_is_rejected(box: Sandbox) -> None:
    data = bytearray(make_zip([M("a", b"secret weights")]))
    central = data.find(b"PK\x01\x02")
    data[6] |= 0x01  # general purpose flag: encrypted, in the local header...
    data[central + 8] |= 0x01  # ...and in the central directory
    assert "encrypt" in box.reject("zip", bytes(data))


def test_zip_name_flagged_utf8_but_not_utf8_is_rejected(box: Sandbox) -> None:
    data = make_zip([M("é.pb", b"1")])
    assert data.count("é".encode()) == 2  # local header and central directory
    assert "corrupt" in box.reject("zip", data.replace("é".encode(), b"\xff\xfe"))


@pytest.mark.parametrize("shift", [50, 0xFFFFFF00])
def test_zip_with_a_member_offset_outside_the_file_is_rejected(box: Sandbox, shift: int) -> None:
    """A central directory said to start later than it does puts members before the start."""
    data = bytearray(make_zip([M("a", b"1" * 100)]))
    end = data.rfind(b"PK\x05\x06")
    offset = int.from_bytes(data[end + 16 : end + 20], "little")
    data[end + 16 : end + 20] = ((offset + shift) % 2**32).to_bytes(4, "little")
    assert "corrupt" in box.reject("zip", bytes(data))


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_with_damaged_bzip2_or_lzma_member_is_rejected(box: Sandbox, compression: int) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr("a", noise(4000, 4))
    data = bytearray(buf.getvalue())
    data[45:60] = b"\xff" * 15  # the start of the compressed stream
    box.reject("zip", bytes(data))


@pytest.mark.parametrize(
    "data",
    [b"", b"not a tar", b"\0" * 100, noise(3000, 5), b"BZh9" + noise(500, 6)],
    ids=["empty", "text", "short-zeros", "random", "bzip2-magic"],
)
@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_corrupt_tar_is_rejected(box: Sandbox, kind: str, data: bytes) -> None:
    box.reject(kind, data)


@pytest.mark.parametrize("cut", [10, 0.5, -8, -4, -1])
def test_truncated_tar_gz_is_rejected(box: Sandbox, cut: float) -> None:
    """Even cut inside the gzip trailer, after every member came through."""
    data = make_tar([M(n, d) for n, d in SAMPLE.items()], gz=True)
    end = int(len(data) * cut) if isinstance(cut, float) else cut
    assert "truncated" in box.reject("tar.gz", data[:end])


def test_tar_gz_with_a_damaged_trailer_is_rejected(box: Sandbox) -> None:
    data = bytearray(make_tar([M("a", b"1")], gz=True))
    data[-8] ^= 0xFF  # the CRC32 of the uncompressed data
    box.reject("tar.gz", bytes(data))


@pytest.mark.parametrize("cut", [600, 3000, 7000])
def test_tar_truncated_inside_a_member_is_rejected(box: Sandbox, cut: int) -> None:
    data = make_tar([M("a", noise(5000, 7)), M("b", noise(3000, 8))])
    assert "truncated" in box.reject("tar", data[:cut])


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
@pytest.mark.parametrize("damage", ["header checksum", "header garbage", "cut after a member"])
def test_tar_that_ends_without_its_end_block_is_rejected(
    box: Sandbox, kind: str, damage: str
) -> None:
    """A bad header after the first member must not pass for a shorter archive (tarfile's
    stream mode stopped there quietly; for tar.gz the gzip layer is intact, so only the tar
    reader can see it)."""
    import gzip

    data = bytearray(make_tar([M("a", b"x" * 600), M("b", b"y" * 100), M("c", b"z")]))
    second = 512 + 1024  # after a's header and its two data blocks
    assert data[second : second + 2] == b"b\0"
    if damage == "header checksum":
        data[second + 148 : second + 156] = b"0000000\0"
    elif damage == "header garbage":
        data[second : second + 512] = noise(512, 10)
    else:
        data = data[:second]
    payload = gzip.compress(bytes(data)) if kind == "tar.gz" else bytes(data)
    message = box.reject(kind, payload)
    if damage == "cut after a member":
        assert "no end-of-archive block" in message
    else:
        assert f"corrupt tar header at byte {second}" in message


def test_gzip_data_in_a_plain_tar_object_is_rejected(box: Sandbox) -> None:
    box.reject("tar", make_tar([M("a", b"1")], gz=True))


def test_zip_bomb_is_rejected_by_its_declared_size_before_writing(box: Sandbox) -> None:
    data = make_zip([M("bomb", b"\0" * 5_000_000)])
    assert len(data) < 10_000
    message = box.reject("zip", data, max_bytes=1_000_000)
    assert "declares 5000000 bytes" in message
    assert "--max-version-size 1000000" in message
    assert tree(box.root) == {}


def test_zip_bomb_over_many_members_is_rejected(box: Sandbox) -> None:
    data = make_zip([M(f"part{i}", b"\0" * 300_000) for i in range(4)])
    box.reject("zip", data, max_bytes=1_000_000)


def test_zip_whose_declared_size_lies_is_rejected(box: Sandbox) -> None:
    """A central directory claiming 10 bytes for 2 MB: the bytes, not the claim, decide."""
    data = bytearray(make_zip([M("bomb", b"\0" * 2_000_000)]))
    local_size, central = 22, data.find(b"PK\x01\x02")
    for at in (local_size, central + 24):
        data[at : at + 4] = (10).to_bytes(4, "little")
    box.reject("zip", bytes(data), max_bytes=1_000_000)
    written = sum(p.stat().st_size for p in box.root.rglob("*") if p.is_file())
    assert written <= 1_000_000


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_tar_beyond_the_size_limit_is_rejected_by_actual_bytes(box: Sandbox, kind: str) -> None:
    data = make(kind, [M(f"part{i}", b"\0" * 300_000) for i in range(4)])
    message = box.reject(kind, data, max_bytes=1_000_000)
    assert "--max-version-size 1000000" in message
    written = sum(p.stat().st_size for p in box.root.rglob("*") if p.is_file())
    assert written <= 1_000_000 + 1024 * 1024  # at most one chunk past the limit


@pytest.mark.parametrize("kind", KINDS)
def test_exactly_at_the_size_limit_is_fine(box: Sandbox, kind: str) -> None:
    content = box.run(kind, make(kind, [M("a", b"x" * 600), M("b", b"y" * 400)]), max_bytes=1000)
    assert tree(content) == {"a": b"x" * 600, "b": b"y" * 400}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "members", [[], [M("empty", kind="dir")], [M("./", kind="dir")]], ids=["none", "dir", "dot"]
)
def test_empty_archive_is_rejected(box: Sandbox, kind: str, members: list[M]) -> None:
    assert "empty" in box.reject(kind, make(kind, members))


def test_content_root_never_strips_a_lone_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"1")
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "ln").symlink_to("../real")
    with pytest.raises(VersionRejected, match="leaves"):
        content_root(staged, WHERE, VERSION)


# --- small pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a", "a"),
        ("a/b/c", "a/b/c"),
        ("./a/./b/", "a/b"),
        ("a//b", "a/b"),
        ("a\\b", "a/b"),
        (".", None),
        ("./", None),
        ("", None),
        ("a..b/..c", "a..b/..c"),
    ],
)
def test_member_path_normalises(name: str, expected: str | None) -> None:
    assert member_path(name, WHERE) == expected


@pytest.mark.parametrize(
    "name", ["/a", "\\a", "C:\\a", "c:", "..", "../a", "a/../..", "a/..", "a\x00b"]
)
def test_member_path_refuses(name: str) -> None:
    with pytest.raises(VersionRejected, match=WHERE):
        member_path(name, WHERE)


def test_limits_count_across_files() -> None:
    limits = Limits(100, WHERE)
    limits.add(60)
    limits.add(40)
    assert limits.written == 100
    with pytest.raises(VersionRejected, match="more than --max-version-size 100"):
        limits.add(1)


# --- fuzzing ----------------------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(kind: str, data: bytes) -> None:
    """Success with everything under the root, or VersionRejected; nothing else, ever."""
    with fresh_box() as sb:
        try:
            content = sb.run(kind, data)
        except VersionRejected:
            return
        assert content == sb.root or content.parent == sb.root


@FUZZ
@given(kind=st.sampled_from(KINDS), data=st.binary(max_size=3000))
def test_fuzz_random_bytes(kind: str, data: bytes) -> None:
    if kind == "tar.gz" and data:
        data = b"\x1f\x8b" + data  # get past the magic now and then
    outcome(kind, data)


_GOOD = {
    kind: make(
        kind,
        [
            M("0002", kind="dir"),
            M("0002/saved_model.pb", b"pb" * 200),
            M("0002/variables/v", noise(700, 9)),
            M("0002/ln", kind="symlink", target="saved_model.pb"),
            M("0002/x.sh", b"#!", mode=0o755),
        ]
        + ([M("0002/h", kind="hardlink", target="0002/x.sh")] if kind not in ZIPS else []),
    )
    for kind in KINDS
}


@FUZZ
@given(
    kind=st.sampled_from(KINDS),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_fuzz_mutated_archives(
    kind: str, edits: list[tuple[float, int]], cut: float | None
) -> None:
    data = bytearray(_GOOD[kind])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    outcome(kind, bytes(data))


_names = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
    st.text(st.sampled_from("./\\a0\x00é"), min_size=1, max_size=12),
    st.sampled_from(["..", "/", "/etc/passwd", "a/../../b", "C:x", "x" * 400, "é" * 200]),
    st.lists(st.sampled_from(["a", "..", ".", "", "b" * 120]), min_size=1, max_size=5).map(
        "/".join
    ),
)
_members = st.lists(
    st.builds(
        M,
        name=_names,
        data=st.binary(max_size=20),
        kind=st.sampled_from(["file", "file", "dir", "symlink", "hardlink"]),
        target=_names,
    ),
    min_size=1,
    max_size=5,
)


@FUZZ
@given(kind=st.sampled_from(["tar", "zip"]), members=_members)
def test_fuzz_member_names(kind: str, members: list[M]) -> None:
    if kind in ZIPS:
        members = [m for m in members if m.kind != "hardlink"]
        assume(members)
    try:
        data = make(kind, members)
    except (ValueError, UnicodeError, OverflowError):
        assume(False)
        raise
    outcome(kind, data)


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_link_to_itself_is_harmless_and_accepted(box: Sandbox, kind: str) -> None:
    """Found by the fuzzer: `0 -> 0//` loops back on itself; it can reach nothing."""
    content = box.run(kind, make(kind, [M("a", b"1"), M("0", kind="symlink", target="0//")]))
    with pytest.raises(OSError, match=os.strerror(errno.ELOOP)):
        os.stat(content / "0")
