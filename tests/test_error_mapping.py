"""Every lower-level exception that can escape is mapped onto the GengbaoError tree.

The httpx ``map_httpcore_exceptions`` test, for our edges: every exception
class of ``sqlalchemy.exc`` raised inside :func:`engine.store.map_storage_errors`
leaves as a :class:`StorageError` of the right kind with the original as its
cause; real databases give the same answers; file readers turn ``OSError``,
``UnicodeDecodeError`` and YAML errors into their own errors; Jinja2's errors
become template errors; and over HTTP a genuine ``IntegrityError`` is a 409,
never a 503 "try again".
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, exc

from engine import errors
from engine.api.app import create_api
from engine.app import App
from engine.assessment.config import load_config
from engine.cases.catalog import Catalog
from engine.clock import FixedClock
from engine.definitions.expressions import compile_guard
from engine.patrols.rules import load_rules
from engine.settings import load_settings
from engine.simulate import load_scenario
from engine.store import connection, lock_wait_limit, map_storage_errors, transaction
from engine.store.tables import cases, id_counters
from notifications.channels.sms import compile_template
from notifications.templates import TemplateStore
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, REPORTER, UNIT, farmland_app
from tests.support.serving import serving

NOW = dt.datetime(2026, 9, 18, 1, 0, tzinfo=dt.UTC)


# ---------------------------------------------------------------- every sqlalchemy.exc class
def sqlalchemy_classes() -> list[type[exc.SQLAlchemyError]]:
    found = [
        obj
        for _, obj in inspect.getmembers(exc, inspect.isclass)
        if issubclass(obj, exc.SQLAlchemyError)
    ]
    return sorted(found, key=lambda c: c.__name__)


def instance(cls: type[exc.SQLAlchemyError], orig: Exception | None = None) -> exc.SQLAlchemyError:
    """An instance of *cls*, whatever its constructor wants."""
    if issubclass(cls, exc.DBAPIError):
        return cls("SELECT 1", {}, orig or Exception("boom"))
    if issubclass(cls, exc.StatementError):
        return cls("boom", "SELECT 1", {}, orig or Exception("boom"))
    values = {"orig": Exception("boom"), "params": {}, "statement": "SELECT 1"}
    arguments = []
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty:
            arguments.append(values.get(name, set() if name in ("cycles", "edges") else "x"))
    return cls(*arguments)


def mapped(error: BaseException) -> errors.StorageError:
    with pytest.raises(errors.StorageError) as info, map_storage_errors("sqlite:///x.db"):
        raise error
    assert info.value.__cause__ is error  # the cause is kept
    return info.value


def expected(cls: type[exc.SQLAlchemyError]) -> type[errors.StorageError]:
    if issubclass(cls, exc.IntegrityError):
        return errors.StorageConflict
    transient = (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError)
    if issubclass(cls, transient):
        return errors.StorageUnavailable
    return errors.StorageError


def test_the_enumeration_covers_sqlalchemy() -> None:
    names = {c.__name__ for c in sqlalchemy_classes()}
    assert len(names) > 30
    assert {"IntegrityError", "OperationalError", "NoResultFound", "TimeoutError"} <= names


@pytest.mark.parametrize("cls", sqlalchemy_classes(), ids=lambda c: c.__name__)
def test_every_sqlalchemy_error_is_mapped_with_its_cause(cls: type[exc.SQLAlchemyError]) -> None:
    assert type(mapped(instance(cls))) is expected(cls)


def test_a_connection_invalidated_under_us_is_worth_a_retry() -> None:
    lost = exc.DBAPIError("SELECT 1", {}, Exception("server closed"), connection_invalidated=True)
    assert type(mapped(lost)) is errors.StorageUnavailable


def test_sqlite_busy_is_transient_but_a_missing_table_is_not() -> None:
    import sqlite3

    locked = exc.OperationalError("x", {}, sqlite3.OperationalError("database is locked"))
    missing = exc.OperationalError("x", {}, sqlite3.OperationalError("no such table: cases"))
    assert type(mapped(locked)) is errors.StorageUnavailable
    assert type(mapped(missing)) is errors.StorageError


def test_engine_errors_pass_through_untouched() -> None:
    with pytest.raises(errors.UnknownCase), map_storage_errors("sqlite:///x.db"):
        raise errors.UnknownCase("C1")


def test_the_message_hides_the_password() -> None:
    error = mapped_from_url("postgresql://gengbao:s3cret@db.example/gengbao")
    assert "s3cret" not in str(error) and "***" in str(error)


def mapped_from_url(url: str) -> errors.StorageError:
    with pytest.raises(errors.StorageError) as info, map_storage_errors(url, "connect to"):
        raise exc.OperationalError("connect", {}, Exception("refused"))
    return info.value


# ---------------------------------------------------------------- real databases
def test_a_duplicate_row_is_a_conflict_with_its_cause(engine: Engine) -> None:
    row = {"prefix": "T", "day": "20260918", "last": 1}
    with transaction(engine) as conn:
        conn.execute(sa.insert(id_counters).values(**row))
    with pytest.raises(errors.StorageConflict) as info, transaction(engine) as conn:
        conn.execute(sa.insert(id_counters).values(**row))
    assert isinstance(info.value.__cause__, exc.IntegrityError)
    with connection(engine) as conn:  # the failed transaction left nothing behind
        count = conn.execute(sa.select(sa.func.count()).select_from(id_counters)).scalar()
    assert count == 1


def test_a_missing_table_is_a_fault_not_a_retry(engine: Engine) -> None:
    with pytest.raises(errors.StorageError) as info, connection(engine) as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert not isinstance(info.value, errors.StorageUnavailable)
    assert isinstance(info.value.__cause__, exc.DBAPIError)


def test_an_unreachable_server_is_worth_a_retry() -> None:
    from engine.store.db import make_engine

    unreachable = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    try:
        with pytest.raises(errors.StorageUnavailable) as info, connection(unreachable):
            pass
    finally:
        unreachable.dispose()
    assert isinstance(info.value.__cause__, exc.OperationalError)
    assert "127.0.0.1:1" in str(info.value)


def test_a_bounded_lock_wait_gives_up_as_lock_timed_out(database: Database) -> None:
    if database.backend != "postgres":
        pytest.skip("SQLite writers queue on the database lock; there is no row lock to wait on")
    engine = database.new_engine()
    with transaction(engine) as conn:
        conn.execute(sa.insert(id_counters).values(prefix="L", day="20260918", last=1))
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with transaction(engine) as conn:
            conn.execute(sa.select(id_counters).with_for_update())
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with (
            pytest.raises(errors.LockTimedOut) as info,
            transaction(engine) as conn,
            lock_wait_limit(conn, 100),
        ):
            conn.execute(sa.select(id_counters).with_for_update())
    finally:
        release.set()
        thread.join()
    assert info.value.waited_ms == 100
    assert isinstance(info.value.__cause__, exc.OperationalError)


# ---------------------------------------------------------------- files: OSError, UTF-8, YAML
def _catalog_register(path: Path) -> object:
    from engine.store.db import ensure_schema, make_engine

    engine = make_engine(f"sqlite:///{path.parent / 'catalog.db'}")
    try:
        ensure_schema(engine)
        return Catalog(engine, FixedClock(NOW)).register_file(path)
    finally:
        engine.dispose()


READERS: dict[str, Callable[[Path], object]] = {
    "settings": load_settings,
    "patrol rules": lambda p: load_rules(p, "Asia/Shanghai"),
    "scenario": load_scenario,
    "assessment": load_config,
    "workflow": _catalog_register,
}
# Readers whose error drops its cause today (``from None``); they are being rewritten
# onto the one positioned-YAML reader, which keeps it.
CAUSE_DROPPED = {"settings"}


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, tuple[Path, type[BaseException] | None]]:
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe not UTF-8")
    (tmp_path / "broken.yaml").write_text("a: [\n", encoding="utf-8")
    return {
        "missing": (tmp_path / "missing.yaml", OSError),
        "a folder": (tmp_path / "folder.yaml", OSError),
        "not UTF-8": (tmp_path / "binary.yaml", UnicodeDecodeError),
        "broken YAML": (tmp_path / "broken.yaml", None),  # reported as a diagnostic
    }


@pytest.mark.parametrize("reader", sorted(READERS))
def test_file_readers_map_every_lower_level_error(
    reader: str, bad_files: dict[str, tuple[Path, type[BaseException] | None]]
) -> None:
    for what, (path, cause) in bad_files.items():
        with pytest.raises(errors.GengbaoError) as info:
            READERS[reader](path)
        assert not isinstance(info.value, errors.StorageError), what
        if cause is not None and reader not in CAUSE_DROPPED:
            assert isinstance(info.value.__cause__, cause), (reader, what)


# ---------------------------------------------------------------- Jinja2 and guards
def test_template_errors_keep_the_jinja2_cause(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "subject: '{{ case.id'\nbody: b\nshort: c\n", encoding="utf-8"
    )
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe")
    store = TemplateStore([tmp_path])
    with pytest.raises(errors.TemplateError) as syntax:
        store.get("broken")
    assert isinstance(syntax.value.__cause__, jinja2.TemplateSyntaxError)
    with pytest.raises(errors.TemplateError) as unreadable:
        store.get("binary")
    assert isinstance(unreadable.value.__cause__, UnicodeDecodeError)
    with pytest.raises(errors.TemplateError):
        store.get("no_such_template")


def test_a_notice_whose_template_fails_is_a_failed_delivery_with_its_cause(tmp_path: Path) -> None:
    (tmp_path / "patrol_note.yaml").write_text(
        "subject: '{{ patrol.rule }}'\nbody: '{{ patrol.rule | int(base=\"x\") }}'\nshort: s\n",
        encoding="utf-8",
    )
    store = TemplateStore([tmp_path])
    with pytest.raises(errors.DeliveryFailed) as info:
        store.render("patrol_note", "patrol", {"patrol": {}})  # no case: no generic fallback
    assert not info.value.retryable
    assert isinstance(info.value.__cause__, jinja2.UndefinedError)


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("{{ text", jinja2.TemplateSyntaxError),
        ("{{ text.__class__ }}", jinja2.exceptions.SecurityError),
    ],
)
def test_gateway_templates_map_jinja2_errors(source: str, cause: type[Exception]) -> None:
    with pytest.raises(errors.TemplateProblem) as info:
        compile_template(source)
    assert isinstance(info.value, errors.TemplateError)
    assert isinstance(info.value.__cause__, cause)


def test_a_guard_syntax_error_is_an_expression_error_with_its_cause() -> None:
    with pytest.raises(errors.ExpressionError) as info:
        compile_guard("area_m2 >")
    assert isinstance(info.value.__cause__, SyntaxError)
    assert info.value.details == {"offset": info.value.offset}


# ---------------------------------------------------------------- over HTTP
@pytest.fixture
def api_app(database: Database) -> Iterator[App]:
    app = farmland_app(database.url, FixedClock(NOW))
    yield app
    app.close()


def test_a_genuine_integrity_error_is_a_409_not_a_503(api_app: App) -> None:
    """The id counter restored from an older backup hands out a taken case id:
    the insert breaks the primary key.  Retrying cannot help, so no "try again"."""
    first = api_app.cases.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA)
    with transaction(api_app.engine) as conn:
        conn.execute(sa.update(id_counters).values(last=0))
    _, token = api_app.tokens.create(REPORTER)
    body: dict[str, Any] = {"workflow": "farmland_violation", "unit": UNIT, "data": CASE_DATA}
    with serving(create_api(api_app)) as base, httpx.Client(base_url=base) as client:
        reply = client.post("/cases", json=body, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 409, reply.text
    answer = reply.json()
    assert answer["error"] == "storage_conflict"
    assert "try again" not in answer["message"] and "nothing was saved" in answer["message"]
    with connection(api_app.engine) as conn:
        ids = conn.execute(sa.select(cases.c.id)).scalars().all()
    assert ids == [first.id]  # the refused request saved nothing
