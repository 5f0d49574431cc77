"""The composition root: build everything from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.org import Org, load_org, sync_org
from models.calendar import WorkdayCalendar
from models.clock import Clock
from models.db import make_engine, migrate, unit_of_work
from schedules.config import ScheduleConfig
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
        config = ScheduleConfig.from_org(self.org.raw)
        return JobRunner(self.engine, self.dispatcher.calendar, config, clock or self.dispatcher.clock)


def build(settings: Settings, clock: Clock | None = None) -> App:
    """Load the org file (refusing a bad one), migrate the database, write the org into it."""
    org = load_org(settings.org_file)
    engine = make_engine(settings.database_url)
    migrate(engine)
    with unit_of_work(engine) as session:
        sync_org(session, org)
    dispatcher = Dispatcher(engine, WorkdayCalendar.from_org(org.raw), clock)
    return App(settings, engine, org, dispatcher)
