"""Pages for duty staff (``/ui``): sign-in, my tasks (我的待办), the case page and the
overdue board (超期预警).

An edge like the HTTP API: each page parses the request, calls the same services
the API calls (with the signed-in person as the viewer, so scope and permissions
are the services' own), and renders a Jinja2 template of this package.  Everything
is served from here — templates, CSS and the few lines of JavaScript — so the pages
work on an intranet with no internet access, and every action is a plain HTML form.

    app.py       the pages' FastAPI application, mounted at /ui by engine.api.app
    render.py    the template environment (autoescaped), local times, the error page
    session.py   the session cookie, who is signed in, the CSRF check
    signin.py    /ui/login, /ui/logout
    tasks.py     /ui/tasks
    cases.py     /ui/cases/{id}
    actions.py   the forms posted from it: events, 签收, signatures, transfers, replies
    board.py     /ui/board and /ui/board/cases
    forms.py     form fields from the workflow's payload fields, typed values back
    patrols.py   /ui/patrols (巡查: record a patrol with photos, the ledger), /ui/photos/{sha256}
    assessment.py  /ui/assessment (考核: the report, its charts, CSV and XLSX)
    maps.py      boundaries and case shapes as inline SVG, for the case page and the board
"""

from __future__ import annotations

from engine.pages.app import PREFIX, create_pages

__all__ = ["PREFIX", "create_pages"]
