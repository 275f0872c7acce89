"""Bulk case creation: many ``create_case`` calls in one transaction, written with executemany.

:func:`create_cases` (exposed as :meth:`CaseService.create_cases`) writes the
rows :meth:`CaseService.create_case` writes — the case row, its first history
entry (hash-chained from ``GENESIS``), the ``state_entries`` row, the initial
state's timers and the case's deadline (:class:`~engine.timers.TimerSchedule`),
the notifications of the entry (none for a creation), the columns the effects
decide (``Change.case_values``) and the id counter — but
a batch of :data:`BATCH_ROWS` cases at a time with one ``executemany`` per
table, not one statement per case.

Every item is checked first, with the rules of ``create_case``: the unit
exists and is active, the actor may open a case there (the same
``_authorize``), the data passes the workflow's fields (the same
``_case_data``), and an idempotency key already used by the actor replays its
first answer (the same request digest, so a key used by ``POST /cases`` and
then by an import replays too; a different request with it is refused for
that item).  Then:

- **all or nothing** (the default): one bad item and nothing is written, the
  result says ``refused`` and lists every problem;
- **skip invalid**: the good items are written, the bad ones reported.

**One transaction for the whole import**, in both modes.  All or nothing needs
it; with skip-invalid the bad items are already set aside before the first
write, so one transaction only adds that a crash or a storage error leaves
no half-written import behind (a rerun with keys replays nothing twice).  The
batches bound the size of each statement, not the transaction.  The ids are
one contiguous block drawn in one counter update (:func:`engine.cases.ids.next_ids`),
under the counter row's lock: a concurrent ``create_case`` on PostgreSQL waits
for the import to commit and then draws the next number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, select, update

from engine.cases.history import GENESIS
from engine.cases.ids import next_ids
from engine.cases.records import CaseView, Change, HistoryRow, jsonable
from engine.cases.service import CREATE_TRIGGER, CaseService, _case_data, _digest
from engine.errors import InvalidData, NotPermitted, UnknownUnit
from engine.grid.registry import get_unit
from engine.store import transaction
from engine.store.bulk import insert_many
from engine.store.tables import cases, history, idempotency, state_entries

__all__ = ["BATCH_ROWS", "BatchResult", "ItemOutcome", "NewCase", "Problem", "create_cases"]

BATCH_ROWS = 1000  # cases per executemany batch
_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class NewCase:
    """One case to open: its unit, data and optional idempotency key; *line* says where
    it came from (a file's line, or the item's number in a request)."""

    line: int
    unit: str
    data: Mapping[str, Any]
    key: str | None = None


@dataclass(frozen=True, kw_only=True)
class Problem:
    """Why one item cannot be imported: ``field`` is ``unit``, ``key``, ``data.NAME`` or
    ``None`` (the line as a whole)."""

    line: int
    field: str | None
    message: str
    code: str = "invalid_data"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "code": self.code, "message": self.message}

    def describe(self, source: str) -> str:
        """``findings.jsonl:7: data.area_m2: expected a number, got text ('abc')``."""
        where = f"{source}:{self.line}" if source else f"item {self.line}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


@dataclass(frozen=True, kw_only=True)
class ItemOutcome:
    """One item's answer: the case's id (new, or replayed by its key) or its problems."""

    line: int
    id: str | None = None
    replayed: bool = False
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        if self.problems:
            return {
                "line": self.line,
                "id": None,
                "error": self.problems[0].code,
                "problems": [p.as_dict() for p in self.problems],
            }
        return {"line": self.line, "id": self.id, "replayed": self.replayed}


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    """What an import did: ``refused`` (nothing written) or ``written`` new cases, the
    ``replayed`` items and the ``skipped`` bad ones; ``items`` in the order given."""

    workflow: str
    items: list[ItemOutcome]
    refused: bool
    written: int
    replayed: int
    skipped: int
    statements: int = 0  # SQL statements the write took (for the benchmark)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "refused": self.refused,
            "written": self.written,
            "replayed": self.replayed,
            "skipped": self.skipped,
            "items": [i.as_dict() for i in self.items],
        }


class BatchEffects(Protocol):
    """An effects hook that also takes many changes at once (returns extras in order)."""

    def on_changes(self, conn: Connection, changes: Sequence[Change]) -> list[dict[str, Any]]: ...


def create_cases(
    service: CaseService,
    workflow: str,
    items: Sequence[NewCase],
    actor: str,
    *,
    skip_invalid: bool = False,
    rejected: Sequence[Problem] = (),
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Open the cases of *items* as *actor* (see the module's docstring).  *rejected*
    are problems found before (lines of a file that did not parse): they count as bad
    items, so they refuse an all-or-nothing import too.  *progress* is told
    ``(written, to write)`` after each batch."""
    with transaction(service.engine) as conn:
        definition_id, version = service.catalog.latest(conn, workflow)
        wf = service.catalog.compiled(conn, definition_id).workflow
        roles = [str(r) for r in wf.roles]
        codes = {i.unit for i in items}
        unit_problems = _unit_problems(service, conn, actor, codes, workflow, roles)
        answered = _answered(conn, actor, [i.key for i in items if i.key is not None])
        outcomes: dict[int, ItemOutcome] = {}  # by position in items
        problems: dict[int, list[Problem]] = {}
        good: list[tuple[int, NewCase, dict[str, Any], str | None]] = []
        keyed: dict[str, tuple[str, int]] = {}  # key → (digest, position) within this batch
        for pos, item in enumerate(items):
            digest = None
            if item.key is not None:
                # the request create_case digests, so its keys and ours replay each other
                request: dict[str, Any] = {"op": "create", "workflow": workflow}
                request.update(unit=item.unit, data=dict(item.data))
                digest = _digest(request)
                earlier = answered.get(item.key)
                if earlier is not None:
                    if earlier[0] != digest:
                        problems[pos] = [_mismatch(item)]
                    else:
                        outcomes[pos] = ItemOutcome(line=item.line, id=earlier[1], replayed=True)
                    continue
                twin = keyed.get(item.key)
                if twin is not None:
                    if twin[0] != digest:
                        problems[pos] = [_mismatch(item)]
                    else:  # the same request twice in one batch: the second replays the first
                        outcomes[pos] = ItemOutcome(line=item.line, replayed=True)
                    continue
            found: list[Problem] = []
            unit_problem = unit_problems.get(item.unit)
            if unit_problem is not None:
                found.append(Problem(line=item.line, field="unit", **unit_problem))
            try:
                clean = _case_data(wf.fields, {}, item.data, complete=True)
            except InvalidData as exc:
                found.extend(
                    Problem(line=item.line, field=f"data.{name}", message=why)
                    for name, why in exc.problems.items()
                )
            if found:
                problems[pos] = found
                continue
            if item.key is not None and digest is not None:
                keyed[item.key] = (digest, pos)
            good.append((pos, item, clean, digest))
        for pos, found in problems.items():
            outcomes[pos] = ItemOutcome(line=items[pos].line, problems=tuple(found))
        every_problem = sorted(
            [*rejected, *(p for found in problems.values() for p in found)], key=lambda p: p.line
        )
        bad_lines = {p.line for p in rejected}
        if every_problem and not skip_invalid:
            listed = _in_order(items, outcomes, rejected)
            return BatchResult(
                workflow=workflow,
                items=listed,
                refused=True,
                written=0,
                replayed=0,
                skipped=len(problems) + len(bad_lines),
                problems=every_problem,
            )
        now = service.clock.now()
        ids = next_ids(conn, "C", now, len(good))
        state = wf.state(wf.initial)
        closed_at = now if state.final else None
        batch_effects = [_batched(effect) for effect in service.effects]
        written = 0
        for chunk in _chunks(list(zip(ids, good, strict=True)), BATCH_ROWS):
            changes: list[Change] = []
            case_rows: list[dict[str, Any]] = []
            history_rows: list[dict[str, Any]] = []
            entry_rows: list[dict[str, Any]] = []
            for case_id, (_, item, clean, _) in chunk:
                change = Change(
                    case_id=case_id,
                    workflow=wf,
                    definition_id=definition_id,
                    unit=item.unit,
                    actor=actor,
                    trigger=CREATE_TRIGGER,
                    transition=None,
                    from_state=None,
                    to_state=wf.initial,
                    data=clean,
                    payload=clean,
                    at=now,
                    seq=1,
                )
                entry = HistoryRow.of(change, GENESIS)
                changes.append(change)
                case_rows.append(
                    {
                        "id": case_id,
                        "workflow": wf.id,
                        "definition_id": definition_id,
                        "state": wf.initial,
                        "unit_code": item.unit,
                        "data": clean,
                        "revision": 1,
                        "escalation_level": 0,
                        "opened_at": now,
                        "state_entered_at": now,
                        "closed_at": closed_at,
                        "updated_at": now,
                        "created_by": actor,
                        "head_hash": entry.hash,
                    }
                )
                history_rows.append({**entry.values, "prev_hash": entry.prev, "hash": entry.hash})
                entry_rows.append(
                    {"case_id": case_id, "state": wf.initial, "first_entered_at": now}
                )
            insert_many(conn, cases, case_rows)
            insert_many(conn, history, history_rows)
            insert_many(conn, state_entries, entry_rows)
            extras: list[dict[str, Any]] = [{} for _ in changes]
            for apply in batch_effects:
                for extra, more in zip(extras, apply(conn, changes), strict=True):
                    extra.update(more)
            _write_case_values(conn, changes)
            answers: list[dict[str, Any]] = []
            for (case_id, (pos, item, clean, digest)), extra in zip(chunk, extras, strict=True):
                outcomes[pos] = ItemOutcome(line=item.line, id=case_id)
                if item.key is None or digest is None:
                    continue
                view = CaseView(
                    id=case_id,
                    workflow=wf.id,
                    version=version,
                    definition_id=definition_id,
                    state=wf.initial,
                    state_title=state.title,
                    unit=item.unit,
                    data=clean,
                    revision=1,
                    escalation_level=0,
                    opened_at=now,
                    state_entered_at=now,
                    closed_at=closed_at,
                    updated_at=now,
                    created_by=actor,
                    extra=extra,
                )
                answers.append(
                    {
                        "actor": actor,
                        "key": item.key,
                        "request_hash": digest,
                        "kind": "create",
                        "response": jsonable(view.as_dict()),
                        "created_at": now,
                    }
                )
            if answers:
                insert_many(conn, idempotency, answers)
            if progress is not None:
                written += len(chunk)
                progress(written, len(good))
        for pos, outcome in list(outcomes.items()):  # in-batch twins get their first's id
            item = items[pos]
            if outcome.replayed and outcome.id is None and item.key is not None:
                first = outcomes[keyed[item.key][1]]
                outcomes[pos] = ItemOutcome(line=item.line, id=first.id, replayed=True)
        listed = _in_order(items, outcomes, rejected)
        return BatchResult(
            workflow=workflow,
            items=listed,
            refused=False,
            written=len(good),
            replayed=sum(1 for o in listed if o.replayed),
            skipped=len(problems) + len(bad_lines),
            problems=every_problem,
        )


def _write_case_values(conn: Connection, changes: Sequence[Change]) -> None:
    """The case columns the effects decided (``Change.case_values``: the deadline), as
    ``create_case`` writes them after its effects — one UPDATE per distinct set of
    values (a batch's cases mostly share their deadline)."""
    shared: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for change in changes:
        if change.case_values:
            key = tuple(sorted(change.case_values.items()))
            shared.setdefault(key, []).append(change.case_id)
    for values, ids in shared.items():
        conn.execute(update(cases).where(cases.c.id.in_(ids)).values(dict(values)))


def _unit_problems(
    service: CaseService,
    conn: Connection,
    actor: str,
    codes: set[str],
    workflow: str,
    roles: list[str],
) -> dict[str, dict[str, str]]:
    """Per unit code, why *actor* may not open a case there (as ``create_case`` says it);
    each unit is read and its permission checked once, however many items name it."""
    out: dict[str, dict[str, str]] = {}
    for code in codes:
        try:
            unit = get_unit(conn, code)
        except UnknownUnit as exc:
            out[code] = {"message": exc.message, "code": exc.code}
            continue
        if not unit.active:
            out[code] = {"message": f"unit {code!r} is no longer active"}
            continue
        try:
            service._authorize(conn, actor, unit.path, roles, f"open a {workflow} case")
        except NotPermitted as exc:
            out[code] = {"message": exc.message, "code": exc.code}
    return out


def _answered(conn: Connection, actor: str, keys: list[str]) -> dict[str, tuple[str, str]]:
    """The keys *actor* already used: key → (request digest, the case id answered)."""
    out: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(sorted(set(keys)), BATCH_ROWS):
        rows = conn.execute(
            select(idempotency.c.key, idempotency.c.request_hash, idempotency.c.response).where(
                idempotency.c.actor == actor, idempotency.c.key.in_(chunk)
            )
        )
        for row in rows:
            out[row.key] = (row.request_hash, row.response.get("id"))
    return out


def _mismatch(item: NewCase) -> Problem:
    return Problem(
        line=item.line,
        field="key",
        message=f"idempotency key {item.key!r} was already used for a different request",
        code="idempotency_mismatch",
    )


def _in_order(
    items: Sequence[NewCase], outcomes: Mapping[int, ItemOutcome], rejected: Sequence[Problem]
) -> list[ItemOutcome]:
    """Every item's outcome, with the lines that never parsed, in line order."""
    listed = [outcomes.get(pos, ItemOutcome(line=item.line)) for pos, item in enumerate(items)]
    unparsed: dict[int, list[Problem]] = {}
    for p in rejected:
        unparsed.setdefault(p.line, []).append(p)
    listed.extend(ItemOutcome(line=line, problems=tuple(ps)) for line, ps in unparsed.items())
    return sorted(listed, key=lambda o: o.line)


def _batched(effect: Any) -> Any:
    """The effect's ``on_changes``, or its ``on_change`` called per change."""
    many = getattr(effect, "on_changes", None)
    if many is not None:
        return many
    return lambda conn, changes: [effect.on_change(conn, c) for c in changes]


def _chunks(values: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
