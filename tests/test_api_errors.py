"""Every error of the engine's tree has its HTTP status, decided in one place."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import engine
import notifications
from engine import errors
from engine.api.errors import STATUS, status_of


def _subclasses(cls: type[errors.GengbaoError]) -> set[type[errors.GengbaoError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _import_everything() -> None:
    """Import every module of the engine and the notifications, so all subclasses exist."""
    for package in (engine, notifications):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.startswith("engine.store.migrations"):  # env.py runs Alembic
                importlib.import_module(info.name)


def test_every_class_of_the_tree_has_its_own_status() -> None:
    tree = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.GengbaoError)
    }
    assert sorted(c.__name__ for c in tree - set(STATUS)) == []


def test_every_error_raised_anywhere_maps_through_a_specific_class() -> None:
    """Subclasses defined beside their subsystem inherit a status, never just the root's."""
    _import_everything()
    for cls in _subclasses(errors.GengbaoError):
        nearest = next(c for c in cls.__mro__ if c in STATUS)
        assert nearest is not errors.GengbaoError, f"{cls.__module__}.{cls.__name__}"


EXPECTED = [
    (errors.UnknownCase("C1"), 404),
    (errors.UnknownWorkflow("w"), 404),
    (errors.UnknownUnit("u"), 404),
    (errors.UnknownPerson("p"), 404),
    (errors.NotFound("x"), 404),
    (errors.TriggerNotAllowed("t", "s", ["a"]), 409),
    (errors.VersionConflict("C1", 1, 2), 409),
    (errors.InvalidData({"f": "bad"}), 422),
    (errors.IdempotencyMismatch("k"), 422),
    (errors.RequestInProgress("k", 5000), 409),
    (errors.UnknownTrigger("t", []), 422),
    (errors.GuardFailed("t", ["x > 1"]), 422),
    (errors.NotPermitted("p", "fire", "u", ["town.leader"]), 403),
    (errors.Unauthenticated("no token"), 401),
    (errors.StorageUnavailable("down"), 503),
    (errors.LockTimedOut(5000), 503),
    (errors.StorageConflict("duplicate key"), 409),
    (errors.StorageError("no such column"), 500),
    (errors.InvalidDateRange("2026-09-30", "2026-09-01"), 422),
    (errors.DeliveryFailed("smtp down"), 502),
    (errors.ConfigError("bad"), 500),
]


@pytest.mark.parametrize(("error", "status"), EXPECTED, ids=lambda v: type(v).__name__)
def test_status_of_each_error(error: errors.GengbaoError, status: int) -> None:
    assert status_of(error) == status


def test_a_new_subclass_falls_back_to_its_parent() -> None:
    class Newcomer(errors.UnknownCase):
        pass

    assert status_of(Newcomer("C1")) == 404


def test_request_in_progress_says_when_to_retry() -> None:
    import asyncio

    from starlette.requests import Request

    from engine.api.errors import _gengbao

    scope = {"type": "http", "method": "POST", "path": "/cases/C1/events", "headers": []}
    response = asyncio.run(_gengbao(Request(scope), errors.RequestInProgress("k-1", 5000)))
    assert response.status_code == 409
    assert response.headers["retry-after"] == "1"
    assert b'"error":"request_in_progress"' in response.body
