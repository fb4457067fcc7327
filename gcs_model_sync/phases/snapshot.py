"""What a pass starts from, and all that `plan` and `status` read: the listing, the local view
of DEST, and the plan made from both (with what a symbolic link below DEST keeps out of it)."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

from gcs_model_sync.config import Config
from gcs_model_sync.failures import Failure
from gcs_model_sync.install.signature import refusals_key
from gcs_model_sync.layout import RemoteObject, group, manifests
from gcs_model_sync.layout import model_files as listed_files
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.scan import LocalView, scan
from gcs_model_sync.local.state import State, StateError, load_state
from gcs_model_sync.logs import event
from gcs_model_sync.phases import aliases, peek
from gcs_model_sync.plan import filters, links
from gcs_model_sync.plan.completeness import Rules
from gcs_model_sync.plan.filters import Filtered
from gcs_model_sync.plan.plan import Plan, PlanOptions, make_plan
from gcs_model_sync.plan.signed import Required
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.listing import Listing
from gcs_model_sync.source.remote import Bucket


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a read-only command needs: the listing, the local view, and the plan."""

    objects: list[RemoteObject]
    local: LocalView
    plan: Plan
    state: State  # the state file as read; a pass changes it as it goes
    refused: tuple[Failure, ...] = ()  # what a symbolic link below DEST kept out of the plan
    filtered: Filtered | None = None  # what --include/--exclude/--refuse-pickle took out


def inspect(config: Config, stop: StopToken) -> Snapshot:
    """List and plan without writing anything (for `plan` and `status`)."""
    bucket = Bucket(config, stop)
    return snapshot(config, Paths(config.dest), bucket.list_objects(), bucket)


def snapshot(config: Config, paths: Paths, listing: Listing, bucket: Bucket) -> Snapshot:
    objects = listing.objects
    try:
        state = load_state(paths)
    except StateError as exc:
        event(logging.WARNING, "state_unreadable", f"{exc}; treating every folder as unmanaged")
        state = State()
    # A refusal stands for the checks that made it: a fixed --verify (or another
    # --signature-key) checks again.
    standing = refusals_key(config)
    state.refused = {k: r for k, r in state.refused.items() if r.command == standing}
    groups = group(objects, config.source.prefix)  # once: the scan and the plan share it
    models = {model for model, _version, _form in groups}
    local = scan(paths, models, state)
    files = listed_files(objects, config.source.prefix, models) if config.model_files else None
    if files and config.aliases:  # the aliases object is read for the plan, not mirrored
        files = [f for f in files if f.name != config.aliases]
    rules = filters.Rules(config.filters, config.refuse_pickle, config.ready_marker)
    filtered = filters.apply(groups, files, local, rules)
    kept = {model for model, _version, _form in filtered.groups}  # an excluded model's: unread
    named = aliases.read(bucket, objects, kept, config.aliases) if config.aliases else {}
    # A few model files' bytes decide completeness (completeness.to_read): read, then planned again.
    make = functools.partial(
        make_plan,
        filtered.groups,
        filtered.local,
        PlanOptions(
            keep=config.keep,
            allow_empty_source=config.allow_empty_source,
            max_delete=config.max_delete,
            rules=Rules(bucket_now(listing, config), config.settle, config.ready_marker),
            source=str(config.source),
            pins=config.pins,
            manifests=manifests(objects, config.source.prefix),
            required=required(config),
            link_unchanged=config.link_unchanged,
        ),
        files=filtered.files,
        aliases=named,
    )
    plan = filters.merged(peek.planned(bucket, lambda facts: make(facts=facts)), filtered)
    plan, refused = links.refuse(plan, paths.dest, local.links)
    for f in refused:
        event(logging.ERROR, "link_refused", f.message, model=f.model)
    return Snapshot(objects, local, plan, state, refused, filtered)


def required(config: Config) -> Required:
    """Which manifests a version must have, and whether V.sig is checked."""
    key = config.signature_key is not None
    return Required(config.require_digest, config.require_signature, key)


def bucket_now(listing: Listing, config: Config) -> float | None:
    """The bucket's clock for --settle. Every GCS response carries `Date`; a proxy that strips
    it leaves us the node's clock, said once a pass, since a skewed node then misjudges."""
    if listing.server_time is not None or not config.settle:
        return listing.server_time
    event(
        logging.WARNING,
        "no_server_time",
        "the listing response had no Date header; --settle is judged on this node's clock",
    )
    return time.time()
