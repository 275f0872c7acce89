"""Answers of the patrol photo routes (routes/photos.py); built by
:mod:`engine.patrols.photos`, documented here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PatrolPhoto"]


class PatrolPhoto(BaseModel):
    model_config = ConfigDict(extra="allow")

    patrol: str
    sha256: str = Field(description="the SHA-256 of the file, hex: its name in the store")
    bytes: int
    media_type: str = Field(description="from the file's first bytes: image/jpeg, image/png, …")
    uploaded_by: str
    uploaded_at: str
    url: str = Field(description="GET it here (for whoever sees the patrol)")
    cases: list[str] = Field(description="the cases whose history got a `photo` note")
    new: bool = Field(description="false: these bytes were already recorded on this patrol")
