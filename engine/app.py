"""The composition root: settings → database → catalog → services.

The CLI, the HTTP service and tests build one :class:`App` and ask it for
what they need; nothing else wires components together.
"""

from __future__ import annotations

from pathlib import Path

from engine.assessment.service import Assessment
from engine.calendars import WorkingCalendar
from engine.cases.board import Board
from engine.cases.catalog import Catalog, Registered
from engine.cases.service import CaseService
from engine.clock import Clock, SystemClock
from engine.duties.actions import CaseActions
from engine.duties.assignment import Assignments
from engine.duties.countersign import Countersigns
from engine.duties.reads import NotificationReads
from engine.duties.supervision import Supervisions
from engine.duties.tasks import Tasks
from engine.duties.timers import DutyTimers
from engine.duties.transfers import Transfers
from engine.grid.tokens import TokenStore
from engine.grid.views import GridViews
from engine.ops import Operations
from engine.paths import assessment_file, calendars_folder, template_store
from engine.patrols import PatrolLinks, Patrols
from engine.patrols.photos import PatrolPhotos
from engine.people import Credentials, UiSessions
from engine.settings import Settings
from engine.store.db import ensure_schema, make_engine, upgrade
from engine.timers import TimerRecompute, TimerSchedule, TimerService
from engine.versions import VersionMoves
from notifications.channels import build_channels
from notifications.dispatch import Dispatcher
from notifications.outbox import TransitionNotifications
from notifications.render import CaseContext
from notifications.wakeup import install as watch_outbox

__all__ = ["App"]


class App:
    def __init__(self, settings: Settings, clock: Clock | None = None, *, migrate: bool = True):
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.engine = make_engine(
            settings.database_url, sqlite_synchronous=settings.database.sqlite_synchronous
        )
        if migrate:
            ensure_schema(self.engine)
        watch_outbox(self.engine)  # commits that queue notifications wake the dispatcher
        self.templates = template_store(settings.source)
        self.catalog = Catalog(self.engine, self.clock, self.templates.check)
        self.calendar = WorkingCalendar(calendars_folder(settings.source))
        self.schedule = TimerSchedule(
            self.calendar, settings.timezone, office_hours=settings.reminders.office_hours
        )
        self.cases = CaseService(
            self.engine,
            self.catalog,
            self.clock,
            effects=[
                self.schedule,
                TransitionNotifications(),
                PatrolLinks(),
            ],
        )
        self.timers = TimerService(
            self.engine,
            self.cases,
            self.clock,
            retry=settings.timers.retry,
            schedule=self.schedule,
        )
        # Deadlines of duties (countersign parties, transfers, 签收, supervisions): one
        # writer and firer of their timer rows, each duty kind registers with it.
        self.duty_timers = DutyTimers(self.catalog, self.calendar, settings.timezone)
        # 会签: parties of a countersign state (an effect on entry/leave, a gate on events)
        self.countersigns = Countersigns(
            self.cases, self.duty_timers, self.timers.handlers, settings.timezone
        )
        self.cases.effects.append(self.countersigns)
        self.cases.gates.append(self.countersigns)
        # 签收 and 指派: the acknowledgement deadline's timers go with the state's own.
        self.assignments = Assignments(
            self.engine, self.cases, self.duty_timers, self.timers.handlers
        )
        self.schedule.duties.append(self.assignments.timer_rows)
        self.board = Board(
            self.engine,
            self.catalog,
            self.clock,
            settings.timezone,
            due_soon_seconds=settings.board.due_soon_seconds,
        )
        self.tasks = Tasks(
            self.engine, self.catalog, self.clock, self.cases.held, settings.timezone
        )
        self.notification_reads = NotificationReads(self.engine, self.clock)
        self.transfers = Transfers(
            CaseActions(self.cases), self.duty_timers, self.timers.handlers, settings.timezone
        )
        self.cases.gates.append(self.transfers)
        self.supervision = Supervisions(self.cases, self.duty_timers, self.timers.handlers)
        self.recompute = TimerRecompute(self.engine, self.cases, self.schedule, self.clock)
        self.version_moves = VersionMoves(self.engine, self.cases, self.schedule, self.clock)
        self.patrols = Patrols(
            self.engine,
            self.clock,
            self.calendar,
            self.cases,
            settings.timezone,
            self.templates.problem,
        )
        self.timers.handlers["patrol"] = self.patrols.obligations.fire
        self.photos = PatrolPhotos(
            self.engine,
            self.clock,
            self.cases,
            Path(settings.data_dir) / "photos",
            settings.photos.max_bytes,
        )
        self.tokens = TokenStore(self.engine, self.clock)
        # sign-in for the pages: passwords and browser sessions (engine/people)
        self.credentials = Credentials(self.engine, self.clock)
        self.ui_sessions = UiSessions(self.engine, self.clock)
        self.grid = GridViews(self.engine)
        self.ops = Operations(self.engine)
        self.assessment = Assessment(
            self.engine, settings.timezone, assessment_file(settings.source)
        )
        options = settings.notifications
        self.dispatcher = Dispatcher(
            self.engine,
            self.clock,
            build_channels(options.channels, clock=self.clock),
            self.templates,
            CaseContext(self.catalog, settings.timezone, options.base_url),
            options.policy,
        )

    def sync_workflows(self) -> list[Registered]:
        """Register the workflow folder's files (a changed file becomes a new version)."""
        folder = Path(self.settings.workflows_dir)
        return self.catalog.sync_folder(folder) if folder.is_dir() else []

    def upgrade_schema(self) -> None:
        """Migrate the database to the current schema (``gengbao db upgrade``)."""
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()
