"""Reading model files to judge completeness: each object generation is read once, and one
that cannot be read is judged by the listing alone (and read again on a later pass)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gcs_model_sync.errors import SyncError
from gcs_model_sync.layout import Entry, Form, RemoteObject, group
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.phases import peek
from gcs_model_sync.plan.companions import Needs
from gcs_model_sync.plan.plan import Plan, PlanOptions, make_plan


def bucket(name: str) -> Any:
    return SimpleNamespace(source=SimpleNamespace(bucket=name))


def graph(version: int, generation: int = 1) -> RemoteObject:
    return RemoteObject(f"p/m/{version}/saved_model.pb", generation, 10)


def test_a_graph_is_read_once_per_generation_and_the_plan_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []
    monkeypatch.setattr(
        peek, "read_head", lambda _bucket, obj, _limit: reads.append(obj.name) or b"frozen"
    )
    monkeypatch.setattr(peek.companions, "needs", lambda _relpath, _head: Needs())
    groups, local = group([graph(1)], "p/"), LocalView({}, frozenset())
    plans: list[Plan] = []

    def make(facts: peek.Facts) -> Plan:
        plans.append(make_plan(groups, local, PlanOptions(), facts=facts))
        return plans[-1]

    plan = peek.planned(bucket("read-once"), make)
    assert [i.version.id for i in plan.installs] == ["m/1"]
    assert reads == ["p/m/1/saved_model.pb"]
    assert [w.kind for w in plans[0].waiting] == ["unread"]
    peek.planned(bucket("read-once"), make)  # the next pass: known, not read again
    assert reads == ["p/m/1/saved_model.pb"]


def test_an_unreadable_object_is_judged_by_the_listing_and_not_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: object) -> bytes:
        raise SyncError("403 Forbidden")

    monkeypatch.setattr(peek, "read_head", refuse)
    obj = graph(2)
    entry = Entry(obj, "m", "2", Form.FOLDER, "saved_model.pb")
    facts: peek.Facts = {}
    known: peek.Facts = {}
    peek.learn(bucket("unreadable"), [entry], facts, known)
    assert facts == {(obj.name, 1): Needs()}
    assert known == {}


def test_an_object_whose_bytes_tell_nothing_is_never_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peek, "read_head", lambda *_args: pytest.fail("read"))
    obj = RemoteObject("p/m/3/assets/vocab.txt", 1, 10)
    facts: peek.Facts = {}
    peek.learn(
        bucket("no-read"), [Entry(obj, "m", "3", Form.FOLDER, "assets/vocab.txt")], facts, {}
    )
    assert facts == {(obj.name, 1): Needs()}
