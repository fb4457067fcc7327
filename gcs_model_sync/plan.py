"""Pure planning: (listing, local view, options) -> what to fetch, replace and prune. No I/O."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from gcs_model_sync import complete
from gcs_model_sync.complete import Facts, Rules, Wait
from gcs_model_sync.guard import guard as deletion_guard
from gcs_model_sync.layout import (
    VERSION_MAX,
    Entry,
    Form,
    GroupKey,
    Groups,
    ModelFile,
    RemoteObject,
    fingerprint,
    paused_gc,
    servable,
    version_id,
)
from gcs_model_sync.local import LocalView, Managed


@dataclass(frozen=True, slots=True)
class RemoteVersion:
    model: str
    version: str
    form: Form
    entries: tuple[Entry, ...]
    fingerprint: str
    # What the version extracts to, where its archive states it (a zip's central directory,
    # read only when a full disk may call for deleting first); None: unknown.
    stated_size: int | None = None

    @property
    def id(self) -> str:
        return version_id(self.model, self.version)

    @property
    def number(self) -> int:
        return int(self.version)

    @property
    def size(self) -> int:
        return sum(e.obj.size for e in self.entries)

    @property
    def expected_size(self) -> int:
        """The bytes it takes on disk once extracted: the stated size, else the stored one."""
        return self.size if self.stated_size is None else self.stated_size

    @property
    def objects(self) -> tuple[RemoteObject, ...]:
        return tuple(e.obj for e in self.entries)


@dataclass(frozen=True, slots=True)
class Install:
    version: RemoteVersion
    reason: str  # "new", "changed", "missing locally", "replaces unmanaged"

    @property
    def replaces(self) -> bool:
        return self.reason in ("changed", "replaces unmanaged")


@dataclass(frozen=True, slots=True)
class Prune:
    managed: Managed
    reason: str


@dataclass(frozen=True, slots=True)
class FileChange:
    """A model-level file (`--model-files`) to write, or to remove when `obj` is None."""

    model: str
    name: str
    obj: RemoteObject | None
    reason: str

    @property
    def id(self) -> str:
        return f"{self.model}/{self.name}"

    @property
    def removes(self) -> bool:
        return self.obj is None


@dataclass(frozen=True, slots=True)
class Rejection:
    model: str
    version: str
    message: str  # one line, names the object(s)
    refused: bool = False  # by --verify, in an earlier pass
    listed: bool = True  # False: local folders alone (two spellings of a number on disk)

    @property
    def id(self) -> str:
        return version_id(self.model, self.version)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A version in the bucket not installed (or not replaced) yet: its upload is not done."""

    version: RemoteVersion
    kind: Wait
    reason: str
    installed: bool  # an installed folder stays as it is meanwhile

    @property
    def id(self) -> str:
        return self.version.id


@dataclass(frozen=True, slots=True)
class Plan:
    installs: tuple[Install, ...] = ()
    # Not installed this pass: their model's version numbers clash (one of its rejections),
    # or they would be written through a symbolic link (deletions.refuse_links).
    held: tuple[Install, ...] = ()
    waiting: tuple[Waiting, ...] = ()
    prunes: tuple[Prune, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    in_sync: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()  # numeric folders we did not write and will not touch
    outside_keep: tuple[str, ...] = ()  # bucket versions older than --keep, not fetched
    forget: tuple[str, ...] = ()  # state entries whose folder is gone and not in the bucket
    guard: str | None = None  # why no prune may happen this pass
    # The listing holds no version and DEST none: nothing to serve, not a success (exit 3).
    empty: str | None = None
    remote_models: frozenset[str] = field(default_factory=frozenset)
    # --model-files: writes and removals (deletions.decide() says which happen), files in
    # sync, and files in the bucket whose place holds something we did not write (left alone).
    files: tuple[FileChange, ...] = ()
    files_in_sync: tuple[str, ...] = ()
    files_left: tuple[str, ...] = ()
    files_forget: tuple[str, ...] = ()  # ours in the state, gone from disk and from the bucket

    @property
    def changes(self) -> bool:
        return bool(self.installs or self.files or (self.prunes and not self.guard))


def versions_of(groups: Groups) -> tuple[list[RemoteVersion], list[Rejection]]:
    """Versions from grouped entries; two spellings of one version number reject it, and
    so does a number beyond what a model server reads (each spelling on its own line)."""
    by_number: dict[tuple[str, int], dict[tuple[str, Form], list[Entry]]] = defaultdict(dict)
    versions, rejections = [], []
    for (model, version, form), es in groups.items():
        if not servable(version):
            rejections.append(
                Rejection(
                    model,
                    version,
                    f"{_describe(version, form, es)}: version number beyond {VERSION_MAX} "
                    "(int64), which model servers skip; not a version, never installed",
                )
            )
            continue
        by_number[(model, int(version))][(version, form)] = es
    for (model, _number), candidates in by_number.items():
        if len(candidates) > 1:
            names = sorted(_describe(v, f, es) for (v, f), es in candidates.items())
            version = min(v for v, _ in candidates)
            rejections.append(
                Rejection(
                    model,
                    version,
                    f"ambiguous version {version_id(model, version)}: "
                    f"{' and '.join(names)} both claim it; neither is installed",
                )
            )
            continue
        ((version, form), es) = next(iter(candidates.items()))
        bad = next((e for e in es if e.problem), None)
        if bad:
            rejections.append(
                Rejection(model, version, f"{bad.obj.name}: unsafe object key ({bad.problem})")
            )
            continue
        versions.append(RemoteVersion(model, version, form, tuple(es), fingerprint(form, es)))
    return versions, rejections


def _waits(
    versions: list[RemoteVersion], local: LocalView, rules: Rules, facts: Facts | None
) -> dict[str, Waiting]:
    """Folder versions whose upload (or delete) is still in progress, by version id."""
    out = {}
    for v in versions:
        if v.form is not Form.FOLDER:
            continue
        have = local.managed.get(v.id)
        installed = have is not None and v.id in local.on_disk
        if installed and have is not None and have.fingerprint == v.fingerprint:
            continue  # in sync: nothing to wait for
        if installed and have is not None and (why := complete.shrunk(v.entries, have.objects)):
            out[v.id] = Waiting(v, Wait.SHRUNK, why, installed)
        elif found := complete.waiting(v.entries, rules, facts):
            out[v.id] = Waiting(v, found[0], found[1], installed)
    return out


def _ranked(
    numbers: dict[str, list[int]],
    spellings: dict[tuple[str, int], set[str]],
    keep: int,
    skip: set[tuple[str, int]],
) -> set[str]:
    """Version ids within --keep (all when 0), ranking per model without the `skip` ones."""
    return {
        vid
        for model, ranked in numbers.items()
        for number in (
            sorted(n for n in ranked if (model, n) not in skip)[-keep:] if keep else ranked
        )
        for vid in spellings[(model, number)]
    }


def _describe(version: str, form: Form, entries: list[Entry]) -> str:
    if form is Form.FOLDER:
        name, rel = entries[0].obj.name, entries[0].relpath
        return f"folder {name[: len(name) - len(rel)]}"
    return entries[0].obj.name


ANY_TIME = Rules()  # no settle, no marker: what the tests of other rules plan with


@paused_gc
def make_plan(
    groups: Groups,
    local: LocalView,
    keep: int = 0,
    allow_empty_source: bool = False,
    max_delete: int | None = None,
    rules: Rules = ANY_TIME,
    source: str = "the source",
    files: list[ModelFile] | None = None,
    facts: Facts | None = None,
) -> Plan:
    """`groups` is layout.group() of the listing, made once and shared with the local scan;
    `source` (gs://bucket/prefix/) only names the prefix in messages; `files` are the model
    files listed (layout.model_files), None without --model-files; `facts` what the model
    files complete.to_read() names hold (None: judge the listing alone). A version whose
    files are unread waits as UNREAD and ranks as ready: the caller reads and plans again."""
    versions, rejections = versions_of(groups)
    versions, refused = _refused(versions, local)
    rejections += refused
    waits = _waits(versions, local, rules, facts)
    # A rejected version is in the bucket under every spelling it has there (2.zip and
    # 0002.tar.gz): a local folder under any of those names is neither pruned nor unmanaged.
    spellings: dict[tuple[str, int], set[str]] = defaultdict(set)
    for v in versions:
        spellings[(v.model, v.number)].add(v.id)
    rejected = {(r.model, int(r.version)) for r in rejections if servable(r.version)}
    if rejected:
        for model, version, _form in groups:
            if (model, int(version)) in rejected:
                spellings[(model, int(version))].add(version_id(model, version))
    remote_ids = set().union(*spellings.values())

    # --keep ranks every version the bucket holds, rejected ones included; a version still
    # uploading that is not installed does not count yet (it would push out a served one).
    numbers: dict[str, list[int]] = defaultdict(list)
    for model, number in spellings:
        numbers[model].append(number)
    # A version with unread files ranks as ready: it is read before the plan is final.
    unready = {
        (w.version.model, w.version.number)
        for w in waits.values()
        if not w.installed and w.kind is not Wait.UNREAD
    }
    wanted = _ranked(numbers, spellings, keep, skip=unready)
    wanted_once_ready = _ranked(numbers, spellings, keep, skip=set())

    clashes = _clashes(groups, local, rejected, wanted_once_ready)
    rejections += clashes
    clashed = {r.model for r in clashes}
    clashing = {vid for r in clashes for vid in _local_spellings(local, r)}

    installs: list[Install] = []
    in_sync, outside_keep, waiting = [], [], []
    for v in sorted(versions, key=lambda v: (v.model, v.number)):
        w = waits.get(v.id)
        if w is not None and v.id in (
            wanted if w.installed or w.kind is Wait.UNREAD else wanted_once_ready
        ):
            waiting.append(w)
            continue
        if v.id not in wanted:
            outside_keep.append(v.id)
            continue
        have = local.managed.get(v.id)
        present = v.id in local.on_disk
        if have and present and have.fingerprint == v.fingerprint:
            in_sync.append(v.id)
        elif have and present:
            installs.append(Install(v, "changed"))
        elif present:
            installs.append(Install(v, "replaces unmanaged"))
        else:
            installs.append(Install(v, "missing locally" if have else "new"))
    # Nothing of a model whose numbers clash changes (its rejection says why, and stands
    # for the clashing number itself).
    numbers_clashing = {(r.model, int(r.version)) for r in clashes}
    held = tuple(
        i
        for i in installs
        if i.version.model in clashed
        and (i.version.model, i.version.number) not in numbers_clashing
    )
    installs = [i for i in installs if i.version.model not in clashed]

    prunes, forget = [], []
    for vid, m in sorted(local.managed.items()):
        if vid not in local.on_disk:
            if vid not in remote_ids or vid not in wanted:
                forget.append(vid)
            continue
        if vid not in remote_ids:
            prunes.append(Prune(m, "removed from the bucket"))
        elif vid not in wanted:
            prunes.append(Prune(m, f"outside --keep {keep}"))

    unmanaged = tuple(
        sorted(
            vid
            for vid in local.on_disk
            if vid not in local.managed and vid not in wanted_once_ready and vid not in clashing
        )
    )
    changes, files_in_sync, files_left, files_forget = _files(files, local, frozenset(numbers))
    removals = sum(1 for f in changes if f.removes)
    guard = deletion_guard(
        len(prunes) + removals, len(remote_ids), len(local.managed), allow_empty_source, max_delete
    )
    # A typo'd prefix on a fresh node lists nothing: that is no mirror to report as done.
    # Versions waiting or rejected are not "nothing": a prefix being filled is not empty, and
    # a bad name is its own one-line error.
    empty = None
    if not remote_ids and not rejections and not local.on_disk and not allow_empty_source:
        empty = (
            f"{source} holds no model versions and nothing is installed: nothing to serve "
            "(a typo in --source? pass --allow-empty-source if this is intended)"
        )
    return Plan(
        installs=tuple(installs),
        held=held,
        waiting=tuple(waiting),
        prunes=tuple(prunes),
        rejections=tuple(rejections),
        in_sync=tuple(in_sync),
        unmanaged=unmanaged,
        outside_keep=tuple(outside_keep),
        forget=tuple(forget),
        guard=guard,
        empty=empty,
        remote_models=frozenset(numbers),
        files=changes,
        files_in_sync=files_in_sync,
        files_left=files_left,
        files_forget=files_forget,
    )


def _clashes(
    groups: Groups, local: LocalView, rejected: set[tuple[str, int]], wanted: set[str]
) -> list[Rejection]:
    """One number spelled two ways across the bucket and DEST (`3.zip` beside DEST/m/0003,
    or DEST/m/3 beside DEST/m/03): a model server reads both folders as one version and
    serves either, and installing one, or pruning the other first, would change which.
    Nothing of the model changes until one spelling is left. A bucket version counts when
    it is `wanted` (within --keep): one outside it never lands beside the local folder. A
    number the bucket already got an error for (two spellings there, an unsafe key,
    refused) keeps that one."""
    listed: dict[tuple[str, int], list[GroupKey]] = defaultdict(list)
    for key in groups:
        model, version, _form = key
        if version_id(model, version) in wanted:
            listed[(model, int(version))].append(key)
    on_disk: dict[tuple[str, int], set[str]] = defaultdict(set)
    for vid in local.on_disk:
        model, _, version = vid.rpartition("/")
        on_disk[(model, int(version))].add(version)
    out = []
    for (model, number), local_spellings in sorted(on_disk.items()):
        keys = listed.get((model, number), [])
        if (model, number) in rejected or len(keys) > 1:
            continue
        spellings = local_spellings | {version for _m, version, _f in keys}
        if len(spellings) < 2:
            continue
        named = [_local_path(local, model, v) for v in sorted(local_spellings, key=len)]
        named += [_describe(v, f, groups[(m, v, f)]) for m, v, f in keys]
        version = keys[0][1] if keys else min(local_spellings, key=len)
        name = f"model {model}" if model else "the model"
        of = f" of {name}" if model else ""
        out.append(
            Rejection(
                model,
                version,
                f"version {number}{of} is spelled more than one way: {' and '.join(named)}; "
                f"a model server reads each as version {number} and may serve either. Keep "
                "one spelling (rename the bucket object, or remove the local folder); "
                f"nothing of {name} changes until then",
                listed=bool(keys),
            )
        )
    return out


def _local_spellings(local: LocalView, r: Rejection) -> list[str]:
    """The local version ids a clash names."""
    number = int(r.version)
    return [
        vid
        for vid in local.on_disk
        if vid.rpartition("/")[0] == r.model and int(vid.rpartition("/")[2]) == number
    ]


def _local_path(local: LocalView, model: str, version: str) -> str:
    vid = version_id(model, version)
    return f"{local.dest / vid}" if local.dest else f"local folder {vid}"


def _refused(
    versions: list[RemoteVersion], local: LocalView
) -> tuple[list[RemoteVersion], list[Rejection]]:
    """Versions --verify refused, unchanged since: rejected again without a download."""
    if not local.refused:
        return versions, []
    keep, rejections = [], []
    for v in versions:
        r = local.refused.get(v.id)
        if r is not None and r.fingerprint == v.fingerprint:
            again = f"{r.message} (refused earlier; tried again when its object changes)"
            rejections.append(Rejection(v.model, v.version, again, refused=True))
        else:
            keep.append(v)
    return keep, rejections


def _files(
    files: list[ModelFile] | None, local: LocalView, models: frozenset[str]
) -> tuple[tuple[FileChange, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Model-level files: (changes, in sync, left alone, forgotten). Without --model-files
    (None) nothing: files written earlier stay, and stay ours."""
    if files is None:
        return (), (), (), ()
    remote = {f.id: f for f in files}
    changes, in_sync, left, forget = [], [], [], []
    for fid, f in sorted(remote.items()):
        have = local.files.get(fid)
        present = fid in local.entries
        if have and present and have.generation == f.obj.generation:
            in_sync.append(fid)
        elif present and not have:
            left.append(fid)  # hand-made, or another tool's: never touched
        else:
            reason = "changed" if have and present else "missing locally" if have else "new"
            changes.append(FileChange(f.model, f.name, f.obj, reason))
    for fid, have in sorted(local.files.items()):
        if fid in remote:
            continue
        if fid not in local.entries:
            forget.append(fid)
            continue
        gone = "removed from the bucket" if have.model in models else "its model left the bucket"
        changes.append(FileChange(have.model, have.name, None, gone))
    return tuple(changes), tuple(in_sync), tuple(left), tuple(forget)
