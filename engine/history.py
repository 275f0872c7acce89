"""The tamper-evident case history: each row's hash covers its content and the previous hash.

``row_hash`` is SHA-256 over the previous row's hash and a canonical JSON of
the row (sorted keys, UTC ISO timestamps).  :func:`verify_chain` recomputes
the chain and names the first row that breaks it — an edited, deleted or
inserted row behind gengbao's back — and checks the chain is as long as the
case's revision says (so a truncated tail is caught too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.clock import as_utc

__all__ = ["GENESIS", "ChainReport", "row_hash", "verify_chain"]

GENESIS = "0" * 64


def canonical(record: Mapping[str, Any]) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return as_utc(value).isoformat()
        raise TypeError(f"cannot hash {type(value).__name__}")

    return json.dumps(
        record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=default
    )


def row_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    """The hash of one history row: *record* holds every column except the hashes."""
    return hashlib.sha256((prev_hash + "\n" + canonical(record)).encode("utf-8")).hexdigest()


def hashed_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "case_id": row["case_id"],
        "seq": row["seq"],
        "at": row["at"],
        "actor": row["actor"],
        "trigger": row["trigger"],
        "from": row["from_state"],
        "to": row["to_state"],
        "payload": row["payload"],
        "definition_id": row["definition_id"],
    }


@dataclass(frozen=True)
class ChainReport:
    case_id: str
    rows: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "rows": self.rows,
            "ok": self.ok,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        if self.ok:
            return f"case {self.case_id}: history intact ({self.rows} rows)"
        return f"case {self.case_id}: history broken at seq {self.first_bad_seq}: {self.reason}"


def verify_chain(
    case_id: str, rows: Iterable[Mapping[str, Any]], revision: int, head: str | None = None
) -> ChainReport:
    """Check rows (in seq order) against the chain, the case's *revision* and its
    recorded *head* hash (the newest row's)."""
    prev = GENESIS
    count = 0
    for expected_seq, row in enumerate(rows, start=1):
        count += 1
        if row["seq"] != expected_seq:
            return ChainReport(
                case_id,
                count,
                False,
                expected_seq,
                f"row {expected_seq} is missing (found seq {row['seq']})",
            )
        if row["prev_hash"] != prev:
            return ChainReport(
                case_id,
                count,
                False,
                row["seq"],
                "does not link to the previous row (a row before it was changed or removed)",
            )
        if row_hash(prev, hashed_fields(row)) != row["hash"]:
            return ChainReport(case_id, count, False, row["seq"], "content does not match its hash")
        prev = row["hash"]
    if count != revision:
        return ChainReport(
            case_id,
            count,
            False,
            count + 1 if count < revision else revision + 1,
            f"the case is at revision {revision} but the history has {count} rows",
        )
    if head is not None and head != prev:
        return ChainReport(
            case_id, count, False, count, "the newest row is not the one the case recorded"
        )
    return ChainReport(case_id, count, True)
