"""The grid registry: parsing with positions, loading in place, role resolution."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from engine.clock import FixedClock
from engine.errors import GridError, UnknownPerson, UnknownUnit
from engine.grid.registry import (
    GridSummary,
    PersonRow,
    chain,
    get_person,
    get_unit,
    holders,
    holders_by_role,
    in_subtree,
    is_within,
    load_grid,
    parse_grid,
    parse_role_ref,
    person_roles_on_chain,
    remove_grid,
    subtree_prefix,
)
from engine.store.tables import people, person_roles, units
from tests.support.farmland import CASE_DATA, GRID_FILE, REPORTER, UNIT, WORKFLOW_FILE, case_service

GRID = """\
units:
  - code: d
    name: 大渡口区
    level: district
    children:
      - code: d-t
        name: 八桥镇
        level: town
        children:
          - code: d-t-v
            name: 新华村
            level: village
            children:
              - {code: d-t-v-g1, name: 一组, level: group}
              - {code: d-t-v-g2, name: 二组, level: group}
      - {code: d-t2, name: 跳磴镇, level: town}
  - {code: d-t2-v, name: 石盘村, level: village, parent: d-t2}
people:
  - id: zhang
    name: 张镇长
    phone: "13800000001"
    roles:
      - {unit: d-t, role: leader}
  - id: li
    name: 李主任
    roles:
      - {unit: d-t-v, role: leader}
      - {unit: d-t, role: member}
  - id: wang
    name: 王组长
    roles:
      - {unit: d-t-v, role: member}
  - id: office
    name: 区耕保专班办公室
    kind: service
    webhook: https://example.invalid/hook
    roles:
      - {unit: d, role: office}
"""


def _edit(text: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


WITHOUT_WANG = _edit(
    GRID,
    ("name: 八桥镇", "name: 八桥街道"),
    ("  - id: wang\n    name: 王组长\n    roles:\n      - {unit: d-t-v, role: member}\n", ""),
    ("      - {unit: d-t, role: member}\n", ""),
)


def _snapshot(engine: Engine) -> tuple[list[tuple[object, ...]], ...]:
    with engine.connect() as conn:
        return tuple(
            [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
            for t in (units, people, person_roles)
        )


def _ids(rows: list[PersonRow]) -> list[str]:
    return [row.id for row in rows]


# ------------------------------------------------------------------ loading


def test_load_builds_paths_and_rows(engine: Engine) -> None:
    summary = load_grid(engine, GRID)
    assert summary == GridSummary(units_added=7, people_added=4, roles_added=5)
    with engine.connect() as conn:
        group = get_unit(conn, "d-t-v-g1")
        assert (group.path, group.depth, group.parent_code) == (
            "/d/d-t/d-t-v/d-t-v-g1/",
            3,
            "d-t-v",
        )
        flat = get_unit(conn, "d-t2-v")
        assert (flat.path, flat.parent_code, flat.level) == ("/d/d-t2/d-t2-v/", "d-t2", "village")
        office = get_person(conn, "office")
        assert (office.kind, office.webhook) == ("service", "https://example.invalid/hook")
        assert get_person(conn, "zhang").phone == "13800000001"


def test_reload_updates_in_place_and_deactivates(engine: Engine) -> None:
    load_grid(engine, GRID)
    assert load_grid(engine, GRID) == GridSummary()  # nothing changed, nothing duplicated

    summary = load_grid(engine, WITHOUT_WANG)
    assert summary == GridSummary(units_updated=1, people_deactivated=1, roles_deactivated=2)
    with engine.connect() as conn:
        assert get_unit(conn, "d-t").name == "八桥街道"
        assert get_person(conn, "wang").active is False  # kept, not deleted
        assert holders(conn, "d-t-v-g1", "village.member") == []
        assert holders(conn, "d-t-v-g1", "town.member") == []
        count = conn.execute(sa.select(sa.func.count()).select_from(person_roles)).scalar_one()
        assert count == 5

    summary = load_grid(engine, GRID)  # re-added: reactivated, not duplicated
    assert summary == GridSummary(units_updated=1, people_updated=1, roles_added=2)
    with engine.connect() as conn:
        assert get_person(conn, "wang").active is True
        assert _ids(holders(conn, "d-t-v-g1", "village.member")) == ["wang"]
        count = conn.execute(sa.select(sa.func.count()).select_from(person_roles)).scalar_one()
        assert count == 5


def test_units_absent_from_the_file_are_deactivated_then_reactivated(engine: Engine) -> None:
    load_grid(engine, GRID)
    smaller = _edit(GRID, ("  - {code: d-t2-v, name: 石盘村, level: village, parent: d-t2}\n", ""))
    assert load_grid(engine, smaller).units_deactivated == 1
    with engine.connect() as conn:
        assert get_unit(conn, "d-t2-v").active is False
    assert load_grid(engine, GRID).units_updated == 1
    with engine.connect() as conn:
        assert get_unit(conn, "d-t2-v").active is True


SECOND_DISTRICT = """\
units:
  - code: j
    name: 江北区
    level: district
    children:
      - {code: j-t, name: 五里店街道, level: town}
people:
  - id: chen
    name: 陈站长
    roles:
      - {unit: j-t, role: leader}
  - id: office
    name: 区耕保专班办公室
    kind: service
    webhook: https://example.invalid/hook
    roles:
      - {unit: j, role: office}
"""


def _active(engine: Engine, table: sa.Table, key: str) -> list[object]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(table.c[key]).where(table.c.active).order_by(table.c[key])
            ).scalars()
        )


def test_a_second_district_leaves_the_first_as_it_was(engine: Engine) -> None:
    load_grid(engine, GRID)
    before = _snapshot(engine)
    summary = load_grid(engine, SECOND_DISTRICT)
    assert summary == GridSummary(units_added=2, people_added=1, roles_added=2)
    first_units = [u for u in _snapshot(engine)[0] if not str(u[0]).startswith("j")]
    assert first_units == before[0]
    assert _active(engine, people, "id") == ["chen", "li", "office", "wang", "zhang"]
    with engine.connect() as conn:  # the shared service account serves both districts
        assert _ids(holders(conn, "d-t-v-g1", "district.office")) == ["office"]
        assert _ids(holders(conn, "j-t", "district.office")) == ["office"]
    # Re-loading the first district's smaller file touches only its own subtree.
    assert load_grid(engine, WITHOUT_WANG) == GridSummary(
        units_updated=1, people_deactivated=1, roles_deactivated=2
    )
    assert "j-t" in _active(engine, units, "code")
    assert "chen" in _active(engine, people, "id")


def test_removing_a_district_is_explicit(engine: Engine) -> None:
    load_grid(engine, GRID)
    load_grid(engine, SECOND_DISTRICT)
    summary = remove_grid(engine, "j")
    assert summary == GridSummary(units_deactivated=2, people_deactivated=1, roles_deactivated=2)
    assert _active(engine, units, "code") == [
        "d",
        "d-t",
        "d-t-v",
        "d-t-v-g1",
        "d-t-v-g2",
        "d-t2",
        "d-t2-v",
    ]
    assert "office" in _active(engine, people, "id")  # still an office of the first district
    with pytest.raises(UnknownUnit):
        remove_grid(engine, "nowhere")


def test_a_district_with_open_cases_is_not_removed_without_force(engine: Engine) -> None:

    load_grid(engine, GRID_FILE)
    service = case_service(engine, FixedClock(datetime(2026, 9, 18, 2, tzinfo=UTC)))
    service.catalog.register_file(WORKFLOW_FILE)
    service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA)
    before = _snapshot(engine)
    with pytest.raises(GridError, match="1 open case"):
        remove_grid(engine, "ddk")
    assert _snapshot(engine) == before
    assert remove_grid(engine, "ddk", force=True).units_deactivated > 0
    assert _active(engine, units, "code") == []


def test_moving_a_unit_rewrites_its_path(engine: Engine) -> None:
    load_grid(engine, GRID)
    moved = _edit(GRID, ("parent: d-t2}", "parent: d-t}"))
    assert load_grid(engine, moved).units_updated == 1
    with engine.connect() as conn:
        assert get_unit(conn, "d-t2-v").path == "/d/d-t/d-t2-v/"
        assert is_within(conn, "d-t2-v", "d-t")


def test_load_from_a_file_path(engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "grid.yaml"
    file.write_text(GRID, encoding="utf-8")
    assert load_grid(engine, file).units_added == 7
    assert load_grid(engine, str(file)) == GridSummary()
    with pytest.raises(GridError, match="cannot read grid file"):
        load_grid(engine, str(tmp_path / "missing.yaml"))


# ------------------------------------------------------------------ resolution


def test_chain_is_nearest_first(engine: Engine) -> None:
    load_grid(engine, GRID)
    with engine.connect() as conn:
        assert [u.code for u in chain(conn, "d-t-v-g1")] == ["d-t-v-g1", "d-t-v", "d-t", "d"]
        assert [u.code for u in chain(conn, "d")] == ["d"]
        with pytest.raises(UnknownUnit):
            chain(conn, "nowhere")


def test_holders_walk_up_the_chain_by_level(engine: Engine) -> None:
    load_grid(engine, GRID)
    with engine.connect() as conn:
        assert _ids(holders(conn, "d-t-v-g1", "town.leader")) == ["zhang"]
        assert _ids(holders(conn, "d-t-v-g1", "village.leader")) == ["li"]
        # li is a member at town level, not at village level
        assert _ids(holders(conn, "d-t-v-g1", "village.member")) == ["wang"]
        assert _ids(holders(conn, "d-t-v-g1", "town.member")) == ["li"]
        assert _ids(holders(conn, "d-t-v-g1", "district.office")) == ["office"]
        assert holders(conn, "d-t2-v", "town.leader") == []  # another town
        assert holders(conn, "d-t", "village.leader") == []  # below, not on the chain
        with pytest.raises(UnknownUnit):
            holders(conn, "nowhere", "town.leader")
        with pytest.raises(GridError, match=r"LEVEL\.ROLE"):
            holders(conn, "d-t", "leader")


def test_holders_of_several_roles_at_once_are_each_roles_holders(engine: Engine) -> None:
    load_grid(engine, GRID)
    refs = ["village.member", "town.member", "town.leader", "person:wang", "person:nobody"]
    with engine.connect() as conn:
        found = holders_by_role(conn, "d-t-v-g1", refs)
        assert {ref: _ids(people) for ref, people in found.items()} == {
            "village.member": ["wang"],  # li is a member at town level, not at village level
            "town.member": ["li"],
            "town.leader": ["zhang"],
            "person:wang": ["wang"],
            "person:nobody": [],
        }
        assert holders_by_role(conn, "nowhere", ["person:wang"])["person:wang"]  # no chain
        with pytest.raises(UnknownUnit):
            holders_by_role(conn, "nowhere", ["town.leader"])


def test_person_roles_on_chain(engine: Engine) -> None:
    load_grid(engine, GRID)
    with engine.connect() as conn:
        assert person_roles_on_chain(conn, "li", "d-t-v-g2") == {"village.leader", "town.member"}
        assert person_roles_on_chain(conn, "li", "d-t") == {"town.member"}
        assert person_roles_on_chain(conn, "li", "d-t2-v") == set()
        with pytest.raises(UnknownPerson):
            person_roles_on_chain(conn, "nobody", "d-t")
        with pytest.raises(UnknownUnit):
            person_roles_on_chain(conn, "li", "nowhere")
    load_grid(engine, WITHOUT_WANG)
    with engine.connect() as conn:
        assert person_roles_on_chain(conn, "wang", "d-t-v") == set()  # inactive person


def test_subtree_and_within(engine: Engine) -> None:
    load_grid(engine, GRID)
    with engine.connect() as conn:
        prefix = subtree_prefix(conn, "d-t")
        assert prefix == "/d/d-t/"
        query = sa.select(units.c.code).where(in_subtree(units.c.path, prefix))
        # "/d/d-t2/" shares the text "/d/d-t" but is not below d-t
        assert sorted(conn.execute(query).scalars()) == ["d-t", "d-t-v", "d-t-v-g1", "d-t-v-g2"]
        assert is_within(conn, "d-t-v-g1", "d-t")
        assert is_within(conn, "d", "d")
        assert not is_within(conn, "d-t2-v", "d-t")
        assert not is_within(conn, "d", "d-t")
        with pytest.raises(UnknownUnit):
            is_within(conn, "d", "nowhere")


def test_role_refs() -> None:
    assert parse_role_ref("town.leader") == ("town", "leader")
    assert parse_role_ref("village.duty_officer") == ("village", "duty_officer")
    for bad in ("leader", "county.leader", "town.", "town.Leader"):
        with pytest.raises(GridError):
            parse_role_ref(bad)


# ------------------------------------------------------------------ errors

BAD = """\
units:
  - code: d
    name: D
    level: district
    colour: red
    children:
      - code: d-t
        name: T
        level: township
      - code: d-t2
        name: T2
        level: district
      - code: d
        name: again
        level: town
people:
  - id: p1
    name: P
    roles:
      - {unit: d-x, role: leader}
"""


def _lines(error: GridError) -> list[str]:
    return str(error).splitlines()


def test_errors_are_gathered_with_positions() -> None:
    with pytest.raises(GridError) as info:
        parse_grid(BAD, "bad.yaml")
    lines = _lines(info.value)
    assert len(lines) == 5, lines
    assert re.match(r"bad\.yaml:5:5: error: units\[0\]\.colour: unknown key 'colour'", lines[0])
    assert "allowed: code, name, level, parent, children" in lines[0]
    assert lines[1].startswith(
        "bad.yaml:9:16: error: units[0].children[0].level: expected one of district, town, "
        "village, group, got text ('township')"
    )
    assert lines[2].startswith("bad.yaml:12:16: error: units[0].children[1].level:")
    assert "must be below its parent" in lines[2]
    assert lines[3].startswith("bad.yaml:13:15: error: units[0].children[2].code:")
    assert "duplicate unit code 'd' (first defined at line 2)" in lines[3]
    assert lines[4].startswith("bad.yaml:20:16: error: people[0].roles[0].unit:")
    assert "unknown unit 'd-x'" in lines[4]
    assert info.value.details["file"] == "bad.yaml"
    assert [d["line"] for d in info.value.details["diagnostics"]] == [5, 9, 12, 13, 20]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "units:\n  - {name: X, level: town}\n",
            "2:5: error: units[0]: missing required key 'code'",
        ),
        ("units:\n  - {code: x, level: town}\n", "missing required key 'name'"),
        ("units:\n  - {code: x, name: X}\n", "missing required key 'level'"),
        (
            "units:\n  - {code: 500104, name: X, level: town}\n",
            "units[0].code: expected non-empty text, got a number (500104); quote it: '500104'",
        ),
        ("units:\n  - {code: a/b, name: X, level: town}\n", "bad unit code 'a/b'"),
        ("unit: []\n", "unknown key 'unit'; did you mean 'units'?"),
        ("- a\n", "a grid file must be a mapping"),
        ("units: [\n", "YAML syntax"),
        (
            "units:\n  - {code: a, name: A, level: town, parent: b}\n"
            "  - {code: b, name: B, level: district, parent: a}\n",
            "units form a parent cycle",
        ),
        (
            "units:\n  - {code: a, name: A, level: town, parent: nope}\n",
            "unknown parent unit 'nope'",
        ),
        (
            "units: [{code: a, name: A, level: town}]\n"
            "people:\n  - {id: p, name: P}\n  - {id: p, name: Q}\n",
            "4:10: error: people[1].id: duplicate person id 'p' (first defined at line 3)",
        ),
        (
            "units: [{code: a, name: A, level: town}]\n"
            "people:\n  - {id: p, name: P, kind: robot, roles: [{unit: a, role: Leader}]}\n",
            "people[0].kind: expected one of person, service, got text ('robot')",
        ),
        (
            "units: [{code: a, name: A, level: town}]\n"
            "people:\n  - {id: p, name: P, roles: [{unit: a, role: Leader}]}\n",
            "bad role name 'Leader'",
        ),
        (
            "units: [{code: a, name: A, level: town}]\n"
            "people:\n  - {id: p, name: P, roles: [{unit: a, rol: leader}]}\n",
            "unknown key 'rol'; did you mean 'role'? (allowed: unit, role)",
        ),
    ],
    ids=[
        "no-code",
        "no-name",
        "no-level",
        "numeric-code",
        "slash-in-code",
        "unknown-top-key",
        "not-a-mapping",
        "yaml-syntax",
        "parent-cycle",
        "unknown-parent",
        "duplicate-person",
        "bad-kind",
        "bad-role-name",
        "unknown-role-key",
    ],
)
def test_single_problems(text: str, expected: str) -> None:
    with pytest.raises(GridError) as info:
        parse_grid(text, "g.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("g.yaml:")


def test_yes_no_stay_text() -> None:
    grid = parse_grid("units:\n  - {code: 'no', name: yes, level: town}\n")
    assert (grid.units[0].code, grid.units[0].name) == ("no", "yes")


def test_failed_load_changes_nothing(engine: Engine) -> None:
    load_grid(engine, GRID)
    before = _snapshot(engine)
    broken = _edit(WITHOUT_WANG, ("role: office", "role: Office"))
    with pytest.raises(GridError, match="bad role name 'Office'"):
        load_grid(engine, broken)
    assert _snapshot(engine) == before
