"""The tamper-evident case history: each row's hash covers its content and the previous hash.

``row_hash`` is SHA-256 over the previous row's hash and a canonical text of
the row.  :func:`verify_chain` recomputes the chain and names the first row
that breaks it — an edited, deleted or inserted row behind gengbao's back —
and checks the chain is as long as the case's revision says (so a truncated
tail is caught too).

Each row records the *hash scheme* it was hashed with (``history.hash_scheme``),
and is verified with that scheme, so rows written by an older gengbao keep
verifying:

1. JSON as Python's ``json.dumps`` spells it (sorted keys, compact, UTC ISO
   timestamps).  Numbers are hashed as spelt, but PostgreSQL's JSONB keeps a
   number's value, not its text: ``-0.0`` reads back ``0.0``, ``1e16`` as
   ``10000000000000000``, so such rows failed to verify there.  Rows written
   before migration 0008 carry this scheme.
2. The same, except that every number is hashed by its exact decimal value
   (:func:`canonical_number`: ``1e16``, ``10000000000000000`` and
   ``1.0e16`` are all ``1e16``; ``-0.0`` is ``0``), and the scheme number is
   part of the hashed text.  A value reads back with the same hash from
   SQLite's JSON text and from PostgreSQL's JSONB.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring  # what json.dumps(text, ensure_ascii=False) is
from typing import Any

from engine.clock import as_utc

__all__ = [
    "GENESIS",
    "HASH_SCHEME",
    "HASH_SCHEMES",
    "ChainReport",
    "canonical",
    "canonical_number",
    "row_hash",
    "verify_chain",
]

GENESIS = "0" * 64
HASH_SCHEME = 2  # the scheme new rows are hashed with
HASH_SCHEMES = (1, 2)  # the schemes this gengbao can verify


def _timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


def _legacy(record: Mapping[str, Any]) -> str:
    """Scheme 1: numbers as Python spells them."""
    return json.dumps(
        record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_timestamp
    )


def canonical_number(value: int | float) -> str:
    """A number's exact decimal value, one spelling per value: ``DIGITSeEXPONENT``.

    A float counts as the decimal Python (and JSON) writes for it, the text
    PostgreSQL parses into its exact ``numeric``; trailing zeros move into the
    exponent and a negative zero is zero.
    """
    if isinstance(value, int):  # the common case, without Decimal
        text = str(abs(value))
        significant = text.rstrip("0")
        if not significant:
            return "0"
        return f"{'-' if value < 0 else ''}{significant}e{len(text) - len(significant)}"
    if not math.isfinite(value):
        raise TypeError(f"cannot hash the non-finite number {value!r}")
    sign, digits, exponent = Decimal(repr(value) if isinstance(value, float) else value).as_tuple()
    assert isinstance(exponent, int)
    kept = list(digits)
    while len(kept) > 1 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    if kept == [0]:
        return "0"
    return f"{'-' if sign else ''}{''.join(map(str, kept))}e{exponent}"


def _canonical(value: Any) -> str:
    """Scheme 2: JSON-like text with sorted keys and canonical numbers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return canonical_number(value)
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, datetime):
        return encode_basestring(_timestamp(value))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items())
        inner = (encode_basestring(str(k)) + ":" + _canonical(v) for k, v in items)
        return "{" + ",".join(inner) + "}"
    raise TypeError(f"cannot hash {type(value).__name__}")


def canonical(record: Mapping[str, Any], scheme: int = HASH_SCHEME) -> str:
    """The text of *record* that *scheme* hashes."""
    if scheme == 1:
        return _legacy(record)
    if scheme == 2:
        return _canonical(record)
    raise ValueError(f"unknown hash scheme {scheme}")


def row_hash(prev_hash: str, record: Mapping[str, Any], scheme: int = HASH_SCHEME) -> str:
    """The hash of one history row: *record* holds every column except the hashes."""
    body = canonical(record, scheme)
    text = f"{prev_hash}\n{body}" if scheme == 1 else f"{prev_hash}\n{scheme}\n{body}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


@dataclass(frozen=True, kw_only=True)
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

    def broken(first_bad_seq: int, reason: str) -> ChainReport:
        return ChainReport(
            case_id=case_id, rows=count, ok=False, first_bad_seq=first_bad_seq, reason=reason
        )

    for expected_seq, row in enumerate(rows, start=1):
        count += 1
        if row["seq"] != expected_seq:
            return broken(expected_seq, f"row {expected_seq} is missing (found seq {row['seq']})")
        if row["prev_hash"] != prev:
            return broken(
                row["seq"],
                "does not link to the previous row (a row before it was changed or removed)",
            )
        scheme = row.get("hash_scheme") or 1
        if scheme not in HASH_SCHEMES:
            return broken(
                row["seq"], f"hashed with scheme {scheme}, which this gengbao does not know"
            )
        if row_hash(prev, hashed_fields(row), scheme) != row["hash"]:
            return broken(row["seq"], "content does not match its hash")
        prev = row["hash"]
    if count != revision:
        return broken(
            count + 1 if count < revision else revision + 1,
            f"the case is at revision {revision} but the history has {count} rows",
        )
    if head is not None and head != prev:
        return broken(count, "the newest row is not the one the case recorded")
    return ChainReport(case_id=case_id, rows=count, ok=True)
