"""The composition root: build everything from settings.

Two ways in: `build` prepares the database (migrates it and writes the org file's rows into it)
and is for the commands that own it (`migrate`, `run`, `sandbox`) and the tests; `open_app`
opens a database prepared before and never migrates it or writes the org rows, through a
connection that cannot write unless `writes=True` (`digest`, `remind`, `console`)."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Engine

from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.org import Org, load_org, sync_org
from handlers.intake import categories
from models.calendar import WorkdayCalendar
from models.clock import Clock
from models.db import Access, make_engine, migrate, require_schema, unit_of_work
from schedules.runs import JobRunner


@dataclass
class App:
    settings: Settings
    engine: Engine
    org: Org
    dispatcher: Dispatcher

    def job_runner(self, clock: Clock | None = None) -> JobRunner:
        """The jobs of this app: its engine, its calendar (with the org file's overrides), the
        `schedule:` section of its org file, and the given clock (the dispatcher's by default)."""
        return JobRunner(
            self.engine,
            self.dispatcher.calendar,
            self.org.schedule,
            clock or self.dispatcher.clock,
            ding=self.settings.ding_overdue,
        )

    def __enter__(self) -> App:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.engine.dispose()


def build(settings: Settings, clock: Clock | None = None) -> App:
    """Load the org file (refusing a bad one), migrate the database, write the org into it."""
    org = load_org(settings.org_file)
    engine = make_engine(settings.database_url)
    migrate(engine)
    with unit_of_work(engine) as session:
        sync_org(session, org)
    return _assemble(settings, org, engine, clock)


def open_app(settings: Settings, clock: Clock | None = None, *, writes: bool = False) -> App:
    """Load the org file and open the database as it is: no migration, no org rows written.
    Raises SchemaNotReady when it is missing or not at this code's schema."""
    org = load_org(settings.org_file)
    engine = make_engine(settings.database_url, Access.WRITE if writes else Access.READ)
    try:
        require_schema(engine)
        return _assemble(settings, org, engine, clock)
    except BaseException:
        engine.dispose()
        raise


def _assemble(settings: Settings, org: Org, engine: Engine, clock: Clock | None) -> App:
    categories.use_file(settings.category_file)
    if settings.category_file:
        categories.default_model()  # a bad file is refused now, with its reason, not at the first post
    settings = settings.with_robot_secrets(org.secret_envs)
    dispatcher = Dispatcher(
        engine,
        WorkdayCalendar.from_config(org.calendar),
        clock,
        org.duty_leads,
        card_template_id=settings.card_template_id,
    )
    return App(settings, engine, org, dispatcher)
