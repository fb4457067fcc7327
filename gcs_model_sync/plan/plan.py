"""Pure planning: (listing, local view, options) -> what to fetch, replace and prune. No I/O.

make_plan is the sequence; versions.py says which versions the listing holds (and rejects),
completeness.py whether a folder upload is done, pins.py what a pin or an alias holds in
place, actions.py what each version becomes (install, in sync, waiting, prune), files_plan.py
what --model-files changes, guard.py whether the deletions may happen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from gcs_model_sync.layout import (
    Groups,
    Manifests,
    ModelFile,
    numbers_by_model,
    paused_gc,
    servable,
    version_id,
)
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.plan import actions
from gcs_model_sync.plan.actions import Install, Prune, Waiting
from gcs_model_sync.plan.completeness import Facts, Rules, Wait
from gcs_model_sync.plan.files_plan import FileChange, plan_files
from gcs_model_sync.plan.guard import guard as deletion_guard
from gcs_model_sync.plan.pins import Aliases, Hold, Problem, holds
from gcs_model_sync.plan.reuse import Reuse, plan_reuse
from gcs_model_sync.plan.signed import Required, unpinned
from gcs_model_sync.plan.versions import (
    Rejection,
    RemoteVersion,
    local_spellings,
    ranked,
    refused_again,
    spelling_clashes,
    versions_of,
)


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """The options that shape a plan. The default `rules` have no --settle and no
    --ready-marker; `source` (gs://bucket/prefix/) names the prefix in messages; `manifests`
    are the ones listed beside versions (layout.manifests), `required` what they must be."""

    keep: int = 0
    allow_empty_source: bool = False
    max_delete: int | None = None
    rules: Rules = field(default_factory=Rules)
    source: str = "the source"
    pins: Mapping[str, int] = field(default_factory=dict)  # --pin: model -> version
    manifests: Mapping[tuple[str, str], Manifests] = field(default_factory=dict)
    required: Required = field(default_factory=Required)
    link_unchanged: bool = True  # plan_reuse: files an installed version holds are linked


@dataclass(frozen=True, slots=True)
class Plan:
    installs: tuple[Install, ...] = ()
    # Not installed this pass: their model's version numbers clash (one of its rejections),
    # or they would be written through a symbolic link (links.refuse).
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
    # --pin and aliases objects: each model's hold; the ones its model cannot follow (the
    # model is held: nothing of it changes); versions gone from the bucket kept as named.
    holds: Mapping[str, Hold] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    kept: tuple[str, ...] = ()
    reuse: tuple[Reuse, ...] = ()  # --link-unchanged: files of installs linked, not downloaded


@paused_gc
def make_plan(
    groups: Groups,
    local: LocalView,
    options: PlanOptions = PlanOptions(),
    files: list[ModelFile] | None = None,
    facts: Facts | None = None,
    aliases: Mapping[str, Aliases] | None = None,
) -> Plan:
    """`groups` is layout.group() of the listing, made once and shared with the local scan;
    `files` are the model files listed (layout.model_files), None without --model-files;
    `facts` what the model files completeness.to_read() names hold (None: judge the listing
    alone). A version whose files are unread waits as UNREAD and ranks as ready: the caller
    reads and plans again. `aliases`: each model's aliases object, as read this pass."""
    keep, rules = options.keep, options.rules
    versions, rejections = versions_of(groups, options.manifests)
    versions, refused = refused_again(versions, local)
    versions, unsigned = unpinned(versions, options.required, options.source)
    rejections += refused + unsigned
    waits = actions.waits(versions, local, rules, facts)
    spellings, rejected = _spellings(groups, versions, rejections)
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
    held_in_place, problems = holds(
        options.pins, aliases or {}, numbers, numbers_by_model(local.on_disk)
    )
    wanted = ranked(numbers, spellings, keep, skip=unready, holds=held_in_place)
    wanted_once_ready = ranked(numbers, spellings, keep, skip=set(), holds=held_in_place)

    clashes = spelling_clashes(groups, local, rejected, wanted_once_ready)
    rejections += clashes
    clashed = {r.model for r in clashes} | {p.model for p in problems}
    clashing = {vid for r in clashes for vid in local_spellings(local, r)}

    installs, in_sync, outside_keep, waiting = actions.sort(
        versions, local, waits, wanted, wanted_once_ready
    )
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

    prunes, forget, kept = actions.prunes(local, remote_ids, wanted, keep, held_in_place)

    unmanaged = tuple(
        sorted(
            vid
            for vid in local.on_disk
            if vid not in local.managed and vid not in wanted_once_ready and vid not in clashing
        )
    )
    changes, files_in_sync, files_left, files_forget = plan_files(files, local, frozenset(numbers))
    removals = sum(1 for f in changes if f.removes)
    guard = deletion_guard(
        len(prunes) + removals,
        len(remote_ids),
        len(local.managed),
        options.allow_empty_source,
        options.max_delete,
    )
    # A typo'd prefix on a fresh node lists nothing: that is no mirror to report as done.
    # Versions waiting or rejected are not "nothing": a prefix being filled is not empty, and
    # a bad name is its own one-line error.
    empty = None
    if not remote_ids and not rejections and not local.on_disk and not options.allow_empty_source:
        empty = (
            f"{options.source} holds no model versions and nothing is installed: nothing to serve "
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
        holds=held_in_place,
        problems=tuple(problems),
        kept=tuple(kept),
        reuse=plan_reuse((i.version for i in installs), local) if options.link_unchanged else (),
    )


def _spellings(
    groups: Groups, versions: list[RemoteVersion], rejections: list[Rejection]
) -> tuple[dict[tuple[str, int], set[str]], set[tuple[str, int]]]:
    """Each (model, number) the bucket holds, with its version ids; and the rejected ones."""
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
    return spellings, rejected
