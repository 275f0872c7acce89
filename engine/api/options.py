"""Settings of the HTTP service: the ``api:`` and ``serve:`` blocks of the settings file.

Both are read and checked with the rest of the settings when they load
(:mod:`engine.settings.blocks`); ``ApiOptions.from_settings(settings)`` is
``settings.api``, ``ServeOptions.from_settings(settings)`` is ``settings.serve``.
"""

from __future__ import annotations

from engine.settings.blocks import ApiOptions, ServeOptions

__all__ = ["ApiOptions", "ServeOptions"]
