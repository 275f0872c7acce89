"""Text fields have a length limit (``max_length``, default 2,000 characters), refused
with the field named; short forms (SMS, robot titles) are cut with an ellipsis, never
refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.definitions import FieldSpec, validate_text
from engine.definitions.jsonschema import workflow_schema
from engine.definitions.model import DEFAULT_MAX_LENGTH
from engine.definitions.values import check_value
from engine.errors import EventRejected, InvalidData
from engine.grid.registry import load_grid
from engine.settings import Settings
from engine.store.tables import cases
from tests.support.databases import Database
from tests.support.farmland import GRID_FILE, REPORTER, UNIT

SPOT = Path(__file__).parent / "data" / "valid" / "spot_check.yaml"
START = datetime(2026, 9, 18, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def app(database: Database, tmp_path: Path) -> Iterator[App]:
    text = SPOT.read_text(encoding="utf-8").replace(
        "  remark: {type: text, title: 备注}", "  remark: {type: text, title: 备注, max_length: 10}"
    )
    (tmp_path / "spot_check.yaml").write_text(text, encoding="utf-8")
    application = App(Settings(database_url=database.url), FixedClock(START))
    try:
        load_grid(application.engine, GRID_FILE)
        application.catalog.register_file(tmp_path / "spot_check.yaml")
        yield application
    finally:
        application.close()


def case_count(app: App) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one())


def test_the_default_limit_is_2000_characters() -> None:
    spec = FieldSpec(name="note", type="text")
    assert DEFAULT_MAX_LENGTH == 2000
    assert check_value(spec, "字" * 2000) is None
    assert check_value(spec, "字" * 2001) == (
        "is 2,001 characters long; at most 2,000 (the field's max_length)"
    )
    items = FieldSpec(name="notes", type="list", items="string", max_length=3)
    assert check_value(items, ["abc", "abcd"]) == (
        "item 1: is 4 characters long; at most 3 (the field's max_length)"
    )


def test_a_long_value_is_refused_at_create_naming_the_field(app: App) -> None:
    with pytest.raises(InvalidData) as caught:
        app.cases.create_case("spot_check", UNIT, REPORTER, {"spot_id": "x" * 2001})
    assert isinstance(caught.value, EventRejected)
    assert list(caught.value.problems) == ["spot_id"]
    assert "at most 2,000" in str(caught.value)
    with pytest.raises(InvalidData) as declared:
        app.cases.create_case("spot_check", UNIT, REPORTER, {"spot_id": "a", "remark": "x" * 11})
    assert "remark: is 11 characters long; at most 10" in str(declared.value)
    assert case_count(app) == 0  # nothing written


def test_a_long_payload_is_refused_naming_the_field(app: App) -> None:
    case = app.cases.create_case("spot_check", UNIT, REPORTER, {"spot_id": "TB-1", "remark": "短"})
    with pytest.raises(InvalidData) as caught:
        app.cases.submit_event(case.id, "check", REPORTER, {"finding": "长" * 2001})
    assert list(caught.value.problems) == ["finding"]
    with pytest.raises(InvalidData) as field:  # a case field given in a payload keeps its limit
        app.cases.submit_event(case.id, "check", REPORTER, {"finding": "ok", "remark": "x" * 11})
    assert list(field.value.problems) == ["remark"]
    assert app.cases.get_case(case.id).state == "checking"  # nothing changed
    app.cases.submit_event(case.id, "check", REPORTER, {"finding": "长" * 2000})


def test_max_length_is_in_the_json_schema() -> None:
    field = workflow_schema()["$defs"]["field"]["properties"]["max_length"]
    assert field["type"] == "integer" and field["minimum"] == 1


def test_a_default_longer_than_max_length_is_a_definition_error() -> None:
    text = SPOT.read_text(encoding="utf-8").replace(
        "  remark: {type: text, title: 备注}",
        "  remark: {type: text, title: 备注, max_length: 2, default: 太长了}",
    )
    [error] = validate_text(text, "spot.yaml").errors
    assert error.path == "fields.remark.default"
    assert "at most 2" in error.message
