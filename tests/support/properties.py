"""Hypothesis profiles for the property tests, and how many examples to run.

``ci`` (the default, what ``make test`` and CI run) is derandomized with no
example database, so a run never depends on what an earlier run in this
checkout found; ``fuzz`` (``make fuzz``) searches at random, ten times
longer, and keeps what it finds in ``.hypothesis/``.  ``tests/conftest.py``
loads the profile named by ``$GENGBAO_HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import os

from hypothesis import settings

__all__ = ["FUZZ", "PROFILE_ENV", "examples", "load_profile"]

PROFILE_ENV = "GENGBAO_HYPOTHESIS_PROFILE"
FUZZ = os.environ.get(PROFILE_ENV) == "fuzz"

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False)


def load_profile() -> None:
    settings.load_profile(os.environ.get(PROFILE_ENV, "ci"))


def examples(n: int) -> int:
    """*n* property examples, or ten times as many under the fuzz profile."""
    return n * 10 if FUZZ else n
