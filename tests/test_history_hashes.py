"""The history's hashes verify for every value a field can hold, on both backends.

PostgreSQL keeps JSON in JSONB, which keeps a number's value, not its text
(``-0.0`` comes back ``0.0``, ``1e16`` as ``10000000000000000``): the hashed
form must not depend on how a number is spelt.  Rows hashed by an older
gengbao (scheme 1) still verify.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine

from engine.cases.catalog import Catalog
from engine.cases.history import canonical_number
from engine.cases.service import CaseService
from engine.clock import FixedClock
from engine.grid.registry import load_grid
from engine.store.db import upgrade
from notifications.templates import TemplateStore
from tests.support.databases import Database
from tests.support.farmland import GRID_FILE, REPORTER, UNIT
from tests.support.properties import examples

START = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)

JSONBOX = """\
workflow: jsonbox
title: 任意数据
initial: open
fields:
  anything: {type: list}
  amount: {type: number}
states:
  open: {title: 进行中}
  done: {title: 已完成, final: true}
transitions:
  - trigger: note
    from: open
    to: open
    payload:
      extra: {type: list}
  - trigger: finish
    from: open
    to: done
"""

# The numbers that JSONB respells, and friends.
AWKWARD = [-0.0, 0.0, 1e16, 1.5e300, 5e-324, -1.5e-300, 1e22, 2**63, -(2**64) - 1, 10**40, 0.1]

numbers = st.one_of(
    st.sampled_from(AWKWARD),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**30), max_value=10**30),
)
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def service(engine: Engine, tmp_path: Path) -> CaseService:
    load_grid(engine, GRID_FILE)
    clock = FixedClock(START)
    svc = CaseService(engine, Catalog(engine, clock, TemplateStore().check), clock)
    workflow = tmp_path / "jsonbox.yaml"
    workflow.write_text(JSONBOX, encoding="utf-8")
    svc.catalog.register_file(workflow)
    return svc


@hsettings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(anything=st.lists(json_values, max_size=4), amount=numbers, extra=json_values)
def test_untampered_history_verifies_whatever_the_data(
    service: CaseService, anything: list[Any], amount: float, extra: Any
) -> None:
    case = service.create_case("jsonbox", UNIT, REPORTER, {"anything": anything, "amount": amount})
    service.submit_event(case.id, "note", REPORTER, {"extra": [extra], "anything": [extra]})
    service.submit_event(case.id, "finish", REPORTER, {"amount": amount})
    report = service.verify(case.id)
    assert report.ok, report


@pytest.mark.parametrize("value", AWKWARD)
def test_the_awkward_numbers_verify(service: CaseService, value: float) -> None:
    case = service.create_case("jsonbox", UNIT, REPORTER, {"anything": [value], "amount": value})
    service.submit_event(case.id, "note", REPORTER, {"extra": [{"n": value, "l": [value]}]})
    assert service.verify(case.id).ok


def test_a_number_changed_behind_our_back_is_still_caught(service: CaseService) -> None:
    case = service.create_case("jsonbox", UNIT, REPORTER, {"anything": [1e16], "amount": 2.5})
    with service.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE history SET payload = :p WHERE case_id = :c AND seq = 1"),
            {"p": '{"anything": [1e16], "amount": 2.6}', "c": case.id},
        )
    report = service.verify(case.id)
    assert not report.ok and report.first_bad_seq == 1


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        ((-0.0, 0.0, 0, -0), "0"),
        ((1e16, 10**16, 1.0e16), "1e16"),
        ((1.5e300, 15 * 10**299), "15e299"),
        ((0.1,), "1e-1"),
        ((12.5, 12.50), "125e-1"),
        ((-4000, -4000.0), "-4e3"),
        ((1.2345678901234568e17, 123456789012345680), "12345678901234568e1"),
    ],
)
def test_one_number_one_canonical_spelling(spellings: tuple[float, ...], canonical: str) -> None:
    assert {canonical_number(n) for n in spellings} == {canonical}


# -- rows hashed by gengbao before hash schemes (schema 0005) still verify ------------

OLD_CASE = "C20250101-OLD001"
OLD_HASHES = [  # computed by that gengbao: sha256 over json.dumps of the row
    "d416f43228f8160bdaee10e7cee0c49c02651e15def69ad95cb375f05cc06f9f",
    "70ebf121c7366159717c456f42ecbfd77d344107cf9261ded7aba0c2201a26da",
]

OLD_LEGACY_PAYLOADS = [
    '{"address": "新华村一组 12 号旁", "land_type": "永久基本农田", "area_m2": 4000,'
    ' "source": "村级巡查"}',
    '{"stop_note": "已制止", "area_m2": 12.5}',
]


def test_rows_hashed_before_schemes_still_verify(empty_database: Database) -> None:
    engine = empty_database.new_engine()
    upgrade(engine, "0005")
    at = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
    stamp = at if empty_database.backend == "postgres" else "2025-01-01 02:00:00.000000"
    with engine.begin() as conn:
        run = conn.execute
        run(
            sa.text(
                "INSERT INTO units (code, name, level, parent_code, path, depth, active)"
                " VALUES ('u1', '新华村一组', 'group', NULL, '/u1/', 0, true)"
            )
        )
        run(
            sa.text(
                "INSERT INTO workflow_versions"
                " (id, workflow, version, content_hash, title, source, path, loaded_at)"
                " VALUES (1, 'farmland_violation', 1, 'h', 't', 's', NULL, :at)"
            ),
            {"at": stamp},
        )
        run(
            sa.text(
                "INSERT INTO cases (id, workflow, definition_id, state, unit_code, data,"
                " row_version, escalation_level, opened_at, state_entered_at, updated_at,"
                " created_by, head_hash) VALUES (:id, 'farmland_violation', 1, 'stopped', 'u1',"
                " :data, 2, 0, :at, :at, :at, :actor, :head)"
            ),
            {"id": OLD_CASE, "data": "{}", "at": stamp, "actor": REPORTER, "head": OLD_HASHES[1]},
        )
        rows = [
            (1, "create", None, "discovered", OLD_LEGACY_PAYLOADS[0], "0" * 64, OLD_HASHES[0]),
            (2, "stop", "discovered", "stopped", OLD_LEGACY_PAYLOADS[1], *OLD_HASHES),
        ]
        for seq, trigger, src, dest, payload, prev, digest in rows:
            run(
                sa.text(
                    "INSERT INTO history (case_id, seq, at, actor, trigger, from_state, to_state,"
                    " payload, definition_id, prev_hash, hash) VALUES (:c, :seq, :at, :actor,"
                    " :trigger, :src, :dest, :payload, 1, :prev, :hash)"
                ),
                {
                    "c": OLD_CASE,
                    "seq": seq,
                    "at": stamp,
                    "actor": REPORTER,
                    "trigger": trigger,
                    "src": src,
                    "dest": dest,
                    "payload": payload,
                    "prev": prev,
                    "hash": digest,
                },
            )
    upgrade(engine)
    clock = FixedClock(START)
    service = CaseService(engine, Catalog(engine, clock, TemplateStore().check), clock)
    report = service.verify(OLD_CASE)
    assert report.ok, report
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE history SET actor = 'x' WHERE seq = 2"))
    assert service.verify(OLD_CASE).first_bad_seq == 2


def test_a_row_of_an_unknown_scheme_is_reported_not_trusted(service: CaseService) -> None:
    case = service.create_case("jsonbox", UNIT, REPORTER, {"amount": 1})
    with service.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE history SET hash_scheme = 9 WHERE case_id = :c"), {"c": case.id}
        )
    report = service.verify(case.id)
    assert not report.ok and report.first_bad_seq == 1 and "scheme 9" in report.reason
