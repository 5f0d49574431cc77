"""The dashboard and the ledger export at scale: seed N issues (100,000 by default) with
their full event chains, then time rendering /dashboard (district token: the §2 counts,
26-week trend, township ranking, overdue list), /api/stats, and /api/export.xlsx and .csv
over HTTP on a loopback port. Prints the median of several runs of each.

    .venv/bin/python bench/dashboard.py [--issues 100000] [--runs 5] [--export-runs 3]

Seeding skips the chat path (parsing, permissions, outbox) but not the chain: every issue's
projection is folded by models.lifecycle.apply and every event is hashed by
models.lifecycle.event_hash, exactly as `record` does, then both are bulk-inserted. The
objects handed to those two functions are plain namespaces instead of ORM instances, which
is what makes it fast; a sample of chains is checked afterwards the way `liandong verify` does.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot.app import build
from bot.config import Settings
from bot.web import create_web_app
from bot.web.auth import Tokens
from handlers.intake import CATEGORIES
from models.clock import SHANGHAI, FrozenClock
from models.directory import Directory
from models.lifecycle import apply, event_hash, replay
from models.tables import Issue, IssueEvent

YEAR = 2020
NOW = datetime(YEAR, 12, 30, 17, 0, tzinfo=SHANGHAI)  # late in the year: the default period holds it all
TOKEN = "bench-district-token"
REPORTERS = ("v001", "v002", "v003", "v004", "v005", "v006", "v007", "v008")
TOWNSHIP_STAFF = ("t001", "t002", "t003")
OWNERS = ("p001", "p002", "p003", "d002", "d003")
CHUNK = 5000


class Seeder:
    """Issues and their events as the handlers would record them, hashed and folded the same way."""

    def __init__(self, directory: Directory, rng: random.Random) -> None:
        self.d = directory
        self.rng = rng
        self.villages = [u for u in directory.units.values() if u.kind == "village"]
        self.departments = directory.departments()
        self.categories = [c for c in CATEGORIES if c != "其他"] or ["其他"]
        self.issue_rows: list[dict[str, Any]] = []
        self.event_rows: list[dict[str, Any]] = []
        self.columns = [c.name for c in Issue.__table__.columns]  # type: ignore[attr-defined]

    def _event(
        self, issue: SimpleNamespace, kind: str, actor: str, at: datetime, data: dict[str, Any], tuesday: bool = False
    ) -> None:
        apply(issue, kind, data, at)  # type: ignore[arg-type]
        ev = SimpleNamespace(
            issue_id=issue.id,
            seq=issue.event_count + 1,
            kind=kind,
            actor_id=actor,
            at=at,
            level=issue.level,
            unit_id=issue.unit_id,
            tuesday=tuesday,
            msg_id=f"bench-{issue.id}-{issue.event_count + 1}",
            data=data,
            prev_hash=issue.head_hash,
        )
        ev.hash = event_hash(ev)  # type: ignore[arg-type]
        issue.event_count, issue.head_hash = ev.seq, ev.hash
        self.event_rows.append(vars(ev))

    def new(
        self, number: int, village: Any, township: Any, at_township: bool, phone: str, text: str
    ) -> tuple[dict[str, Any], SimpleNamespace]:
        """The `created` payload of a bench post, and the empty issue its events will fill."""
        rng = self.rng
        data: dict[str, Any] = {
            "title": f"第{number}号 {village.name}村民反映的问题",
            "text": text,
            "level": "township" if at_township else "village",
            "unit_id": township.id if at_township else village.id,
            "township_id": township.id,
            "village_id": village.id,
            "category": rng.choice(self.categories),
            "litigation_risk": rng.random() < 0.2,
            "phones": [phone],
            "has_id_number": False,
            "requested_deadline": None,
            "reporter_id": rng.choice(TOWNSHIP_STAFF if at_township else REPORTERS),
            "source_msg_id": f"bench-{number}",
            "conversation_id": "cid-bench",
        }
        issue = SimpleNamespace(
            id=number, risk=None, owner_id=None, department_id=None, deadline=None, tuesday=False, opinion=None,
            extension_days=None, duplicate_of=None, resolved_at=None, result=None, event_count=0, head_hash="",
        )  # fmt: skip
        return data, issue

    def issue(self, number: int) -> None:
        rng, d = self.rng, self.d
        village = rng.choice(self.villages)
        township = d.get(village.parent_id)  # type: ignore[arg-type]
        at_township = rng.random() < 0.3
        created = datetime.combine(date(YEAR, 1, 1) + timedelta(days=rng.randrange(364)), dtime(8), tzinfo=SHANGHAI)
        created += timedelta(minutes=rng.randrange(600))
        phone = f"13{rng.randrange(10**9):09d}"
        text = f"第{number}号:{village.name}村民反映问题需要协调处理,联系电话{phone}"
        data, issue = self.new(number, village, township, at_township, phone, text)
        self._event(issue, "created", data["reporter_id"], created, data)
        at = created
        if not at_township:
            roll = rng.random()
            if roll < 0.6:  # settled in the village
                self._event(
                    issue,
                    "resolved",
                    issue.reporter_id,
                    at + timedelta(days=rng.uniform(0.5, 12)),
                    {"result": "已调解"},
                )
            elif roll < 0.9:
                at += timedelta(hours=rng.uniform(2, 72))
                up = {"from_level": "village", "to_level": "township", "unit_id": township.id, "reason": "需乡镇协调"}
                self._event(issue, "escalated", issue.reporter_id, at, up)
        if issue.level == "township":
            at += timedelta(hours=rng.uniform(2, 48))
            risk = rng.choice(("高", "中", "低"))
            self._event(issue, "reviewed", "t001", at, {"opinion": "情况属实", "risk": risk, "litigation_risk": False})
            if rng.random() < 0.2:  # on to the district
                at += timedelta(hours=rng.uniform(2, 72))
                up = {
                    "from_level": "township",
                    "to_level": "district",
                    "unit_id": d.district.id,
                    "reason": "请区里协调",
                }
                self._event(issue, "escalated", "t101", at, up)
            else:
                at += timedelta(hours=rng.uniform(1, 24))
                deadline = (at + timedelta(days=rng.randrange(3, 15))).astimezone(SHANGHAI).date()
                assign: dict[str, Any] = {
                    "owner_id": "t001",
                    "department_id": None,
                    "deadline": deadline.isoformat(),
                    "tuesday": False,
                }
                self._event(issue, "assigned", "t101", at, assign)
                if rng.random() < 0.7:
                    self._event(
                        issue, "resolved", "t001", at + timedelta(days=rng.uniform(1, 20)), {"result": "已办结"}
                    )
        if issue.level == "district":
            at += timedelta(days=rng.uniform(0.2, 6))
            local_day = at.astimezone(SHANGHAI)
            tagged = rng.random() < 0.5
            deadline = (local_day + timedelta(days=rng.randrange(5, 30))).date()
            dept = rng.choice(self.departments)
            assign = {"owner_id": rng.choice(OWNERS), "department_id": dept.id, "deadline": deadline.isoformat(),
                      "tuesday": tagged}  # fmt: skip
            self._event(issue, "assigned", "d001", at, assign, tuesday=tagged or local_day.weekday() == 1)
            if rng.random() < 0.8:
                self._event(
                    issue, "resolved", issue.owner_id, at + timedelta(days=rng.uniform(1, 40)), {"result": "已化解"}
                )
        self.issue_rows.append({c: getattr(issue, c, None) for c in self.columns})

    def flush(self, session: Session) -> None:
        if self.issue_rows:
            session.execute(insert(Issue.__table__), self.issue_rows)  # type: ignore[attr-defined]
            session.execute(insert(IssueEvent.__table__), self.event_rows)  # type: ignore[attr-defined]
        self.issue_rows, self.event_rows = [], []


def seed(engine: Any, directory: Directory, n: int) -> tuple[int, float]:
    started = time.perf_counter()
    seeder = Seeder(directory, random.Random(20201231))
    events = 0
    with Session(engine) as session:
        for number in range(1, n + 1):
            seeder.issue(number)
            if number % CHUNK == 0 or number == n:
                events += len(seeder.event_rows)
                seeder.flush(session)
        session.commit()
    return events, time.perf_counter() - started


def check_sample(engine: Any, n: int, size: int = 300) -> None:
    """A sample of chains, checked as `liandong verify` checks them."""
    picks = random.Random(1).sample(range(1, n + 1), min(size, n))
    with Session(engine) as session:
        for number in picks:
            issue = session.get(Issue, number)
            events = list(
                session.exec(select(IssueEvent).where(IssueEvent.issue_id == number).order_by(col(IssueEvent.seq)))
            )
            assert issue is not None and events and events[-1].hash == issue.head_hash
            prev = ""
            for ev in events:
                assert ev.prev_hash == prev and event_hash(ev) == ev.hash, f"#{number} seq {ev.seq}"
                prev = ev.hash
            rebuilt = replay(events)
            assert (rebuilt.status, rebuilt.level, rebuilt.owner_id) == (issue.status, issue.level, issue.owner_id)


async def timed(runs: int, call: Callable[[], Awaitable[int]]) -> tuple[float, list[float], int]:
    times, size = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        size = await call()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, size


async def measure(app: Any, clock: FrozenClock, runs: int, export_runs: int) -> None:
    tokens = Tokens()
    tokens.add(TOKEN, app.dispatcher.directory.district)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_web_app(app, clock, tokens), host="127.0.0.1")) as client:

        def get(path: str) -> Callable[[], Awaitable[int]]:
            async def call() -> int:
                r = await client.get(path, headers=headers)
                assert r.status == 200, (path, r.status)
                return len(await r.read())

            return call

        await get("/dashboard")()  # warm: imports, first connections, SQLite page cache
        for label, path, n in (
            ("dashboard  /dashboard", "/dashboard", runs),
            ("stats      /api/stats", "/api/stats", runs),
            ("list       /api/issues?overdue=true", "/api/issues?overdue=true", runs),
            ("export     /api/export.xlsx", "/api/export.xlsx", export_runs),
            ("export     /api/export.csv", "/api/export.csv", export_runs),
        ):
            median, times, size = await timed(n, get(path))
            runs_text = " ".join(f"{t:.2f}" for t in times)
            print(f"{label:<40} median {median:7.3f} s   ({n} runs: {runs_text})   {size / 1e6:6.2f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--issues", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5, help="runs of each page and API call")
    ap.add_argument("--export-runs", type=int, default=3, help="runs of each export")
    ap.add_argument("--dir", type=Path, help="where to put the SQLite database (default: a temporary folder)")
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="liandong-bench-"))
    db = folder / "dashboard-bench.db"
    db.unlink(missing_ok=True)
    clock = FrozenClock(NOW.astimezone(UTC))
    app = build(Settings(database_url=f"sqlite:///{db}"), clock)
    events, seconds = seed(app.engine, app.dispatcher.directory, args.issues)
    size = db.stat().st_size / 1e6
    print(f"seeded {args.issues:,} issues and {events:,} events in {seconds:.1f} s ({size:.0f} MB SQLite)")
    check_sample(app.engine, args.issues)
    print("hash chains and projections of a 300-issue sample check out")
    asyncio.run(measure(app, clock, args.runs, args.export_runs))
    app.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
