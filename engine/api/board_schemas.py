"""Answers of the overdue board (超期预警): ``GET /board`` and ``GET /board/cases``
(routes/board.py); built by :mod:`engine.cases.board`, documented here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BoardCase", "BoardCasePage", "BoardUnit", "BoardView"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class BoardUnit(_Response):
    unit: str
    name: str
    level: str
    parent: str | None
    depth: int = Field(description="levels below the board's top units (0: a top unit)")
    open: int = Field(description="open cases in the unit and below")
    due_soon: int = Field(description="open, deadline not passed, within the reminder window")
    overdue: int = Field(description="open, deadline passed")


class BoardView(_Response):
    at: str = Field(description="the instant the buckets were computed for")
    workflow: str | None
    state: str | None
    unit: str | None
    due_soon_default_seconds: int = Field(
        description="the window of a state without reminders (settings: board.due_soon)"
    )
    units: list[BoardUnit]


class BoardCase(_Response):
    id: str
    workflow: str
    state: str
    state_title: str
    unit: str
    unit_name: str
    bucket: str = Field(description="overdue | due_soon | open")
    deadline_at: str | None
    deadline_local: str | None = Field(description="the deadline in the server's time zone")
    seconds_left: int | None = Field(description="negative: overdue by that many seconds")
    escalation_level: int
    opened_at: str


class BoardCasePage(_Response):
    unit: str
    bucket: str
    items: list[BoardCase]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )
