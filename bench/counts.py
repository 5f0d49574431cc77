"""The counts at scale: generate N issues (1,000,000 by default) with about 5 events each over
three years, 18 townships and 300 villages, then time each hot read against the floor, a plain
indexed GROUP BY over issues, measured in the same run (median of 5 warm runs each).

    .venv/bin/python bench/counts.py [--issues 1000000] [--db URL] [--reuse] [--explain]

The database is left as built (SQLite: bench-counts.db in a temporary folder unless --db says
otherwise; PostgreSQL: the database must exist and be empty, or pass --reuse to measure what an
earlier run built). Generation skips the chat path but not the chain or the kept counts: each
issue is folded by models.lifecycle.apply, each event hashed by models.lifecycle.event_hash and
the count rows derived by models.facts.facts_of (what `record` keeps event by event), all written
in bulk (sqlite3 executemany, PostgreSQL COPY). --explain prints the plans of the hot statements
(on PostgreSQL each also on its generic plan, plan_cache_mode = force_generic_plan). Last, the
whole weekly digest job is timed with a group bound to every unit (taken out again after).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

import yaml
from sqlalchemy import Engine, event, func, select, text
from sqlmodel import Session, col

from bench.dashboard import OWNERS, Seeder
from bot.app import build
from bot.config import Settings
from bot.org import SAMPLE
from bot.web.stats import township_rows
from handlers.duplicates import _BY_VILLAGE, near_duplicates
from models.calendar import WorkdayCalendar
from models.clock import SHANGHAI, FrozenClock
from models.counts import Period, count_levels
from models.directory import Directory
from models.facts import facts_of
from models.queries import list_issues, pending_inbox
from models.tables import CountFact, GroupBinding, Issue, IssueEvent
from schedules.digest import last_week, year_of
from schedules.due import near_deadlines, week_of
from schedules.ladder import reached

FIRST_DAY, DAYS = date(2020, 1, 1), 3 * 365
NOW = datetime(2022, 12, 30, 17, 0, tzinfo=SHANGHAI)
TODAY = NOW.date()
YEAR = Period(date(2022, 1, 1), date(2022, 12, 31), "2022年")  # 统计 本年, late in the year
VILLAGES = 300
CHUNK = 10_000  # issues per commit
RUNS = 5
CALENDAR = WorkdayCalendar()


def write_org(folder: Path) -> Path:
    """The sample org (its 18 townships, people and groups) with villages added to reach 300."""
    raw = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    townships = raw["townships"]
    have = sum(len(t["villages"]) for t in townships)
    k = 0
    while have < VILLAGES:
        t = townships[k % len(townships)]
        t["villages"].append({"name": f"{t['name']}第{k // len(townships) + 1}村"})
        have, k = have + 1, k + 1
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench-counts-org.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class CountSeeder(Seeder):
    """bench.dashboard's Seeder over three years, with longer lives (about 5 events) and the
    kept count rows of each issue."""

    def __init__(self, directory: Directory, rng: random.Random) -> None:
        super().__init__(directory, rng)
        self.fact_rows: list[dict[str, Any]] = []

    def _go(self, issue: SimpleNamespace, kind: str, actor: str, at: datetime, data: dict[str, Any], **kw: Any) -> bool:
        if at > NOW:  # the future has not happened yet: the life stops here
            return False
        self._event(issue, kind, actor, at, data, **kw)
        return True

    def issue(self, number: int) -> None:
        rng, d = self.rng, self.d
        village = rng.choice(self.villages)
        township = d.get(village.parent_id)  # type: ignore[arg-type]
        at_township = rng.random() < 0.3
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        at = datetime.combine(day, dtime(8), tzinfo=SHANGHAI) + timedelta(minutes=rng.randrange(600))
        phone = f"13{rng.randrange(10**9):09d}"
        text = f"第{number}号:{village.name}村民反映{rng.choice(self.categories)}问题需要协调处理,联系电话{phone}"
        data, issue = self.new(number, village, township, at_township, phone, text)
        first = len(self.event_rows)
        self._event(issue, "created", str(data["reporter_id"]), at, data)
        self._life(issue, township, at)
        self.issue_rows.append({c: getattr(issue, c, None) for c in self.columns})
        events = [SimpleNamespace(**e) for e in self.event_rows[first:]]
        self.fact_rows.extend(facts_of(issue, events))

    def _life(self, issue: SimpleNamespace, township: Any, at: datetime) -> None:
        rng, d = self.rng, self.d
        hours = lambda lo, hi: timedelta(hours=rng.uniform(lo, hi))  # noqa: E731
        if issue.level == "village":
            roll = rng.random()
            for _ in range(rng.choice((0, 1, 1, 2))):
                at += hours(2, 48)
                if not self._go(issue, "feedback", issue.reporter_id, at, {"text": "正在协调"}):
                    return
            if roll < 0.55:  # settled in the village, now and then reopened and settled again
                at += hours(12, 240)
                if not self._go(issue, "resolved", issue.reporter_id, at, {"result": "已调解"}):
                    return
                if rng.random() < 0.05:
                    at += hours(24, 120)
                    reopen = {"reason": "当事人不认可", "by": "reporter"}
                    if not self._go(issue, "reopened", issue.reporter_id, at, reopen):
                        return
                    at += hours(24, 120)
                    self._go(issue, "resolved", issue.reporter_id, at, {"result": "再次调解"})
                return
            if roll > 0.9:
                return  # still open in the village
            at += hours(2, 72)
            up = {"from_level": "village", "to_level": "township", "unit_id": township.id, "reason": "需乡镇协调"}
            if not self._go(issue, "escalated", issue.reporter_id, at, up):
                return
        at += hours(2, 48)
        review = {"opinion": "情况属实", "risk": rng.choice(("高", "中", "低")), "litigation_risk": False}
        if not self._go(issue, "reviewed", "t001", at, review):
            return
        if rng.random() < 0.8:  # the township works it
            at += hours(1, 24)
            deadline = (at + timedelta(days=rng.randrange(3, 15))).astimezone(SHANGHAI).date()
            assign: dict[str, Any] = {
                "owner_id": "t001",
                "department_id": None,
                "deadline": deadline.isoformat(),
                "tuesday": False,
            }
            if not self._go(issue, "assigned", "t101", at, assign):
                return
            for _ in range(rng.choice((1, 1, 2))):
                at += hours(12, 96)
                if not self._go(issue, "feedback", "t001", at, {"text": "已约谈当事人"}):
                    return
            if rng.random() < 0.7:
                self._go(issue, "resolved", "t001", at + hours(24, 480), {"result": "已办结"})
            return
        at += hours(2, 72)
        up = {"from_level": "township", "to_level": "district", "unit_id": d.district.id, "reason": "请区里协调"}
        if not self._go(issue, "escalated", "t101", at, up):
            return
        at += hours(5, 144)
        local_day = at.astimezone(SHANGHAI)
        tagged = rng.random() < 0.5
        deadline = (local_day + timedelta(days=rng.randrange(5, 30))).date()
        dept = rng.choice(self.departments)
        assign = {"owner_id": rng.choice(OWNERS), "department_id": dept.id, "deadline": deadline.isoformat(),
                  "tuesday": tagged}  # fmt: skip
        if not self._go(issue, "assigned", "d001", at, assign, tuesday=tagged or local_day.weekday() == 1):
            return
        for _ in range(rng.choice((1, 2, 2))):
            at += hours(24, 240)
            if not self._go(issue, "feedback", issue.owner_id, at, {"text": "正在办理"}):
                return
        if rng.random() < 0.8:
            at += hours(24, 720)
            if not self._go(issue, "resolved", issue.owner_id, at, {"result": "已化解"}):
                return
            if rng.random() < 0.05:
                at += hours(24, 240)
                if self._go(issue, "reopened", "d001", at, {"reason": "当事人仍有异议", "by": "lead"}):
                    self._go(issue, "resolved", issue.owner_id, at + hours(24, 240), {"result": "已化解"})

    def flush(self, session: Session) -> None:
        for table, rows in (
            (Issue.__table__, self.issue_rows),  # type: ignore[attr-defined]
            (IssueEvent.__table__, self.event_rows),  # type: ignore[attr-defined]
            (CountFact.__table__, self.fact_rows),  # type: ignore[attr-defined]
        ):
            if rows:
                bulk_insert(session, table, rows)
        self.issue_rows, self.event_rows, self.fact_rows = [], [], []


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Rows converted once by the columns' own bind processors (UTC datetimes, JSON text), then
    handed to the driver in bulk: sqlite3's executemany, PostgreSQL's COPY. Compiling a Core
    multi-row INSERT costs more than the whole generation at this size."""
    dialect = session.get_bind().dialect
    names = list(rows[0])
    procs = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    data = [tuple(p(r[n]) if p else r[n] for n, p in zip(names, procs, strict=True)) for r in rows]
    columns = ", ".join(f'"{n}"' for n in names)
    raw: Any = session.connection().connection.driver_connection
    if dialect.name == "sqlite":
        raw.cursor().executemany(f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * len(names))})", data)
        return
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
        for row in data:
            copy.write_row(row)


def seed(engine: Engine, directory: Directory, n: int) -> tuple[int, int, float]:
    started = time.perf_counter()
    seeder = CountSeeder(directory, random.Random(20221230))
    events = facts = 0
    with Session(engine) as session:
        for number in range(1, n + 1):
            seeder.issue(number)
            if number % CHUNK == 0 or number == n:
                events += len(seeder.event_rows)
                facts += len(seeder.fact_rows)
                seeder.flush(session)
                session.commit()
                if number % (CHUNK * 10) == 0:
                    print(f"  {number:,} issues, {time.perf_counter() - started:.0f} s", flush=True)
        if engine.dialect.name == "postgresql":  # COPY wrote explicit ids: the next 上报 takes n + 1
            for table in ("issues", "issue_events"):
                session.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
            session.commit()
    return events, facts, time.perf_counter() - started


def analyze(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def timed(engine: Engine, call: Callable[[Session], Any], runs: int = RUNS, warm: int = 1) -> float:
    """Median seconds of `runs` calls after `warm` unmeasured ones, each in its own session
    (the pooled connection, with its prepared statements, is reused as in the app)."""
    times = []
    for i in range(warm + runs):
        with Session(engine) as s:
            t = time.perf_counter()
            call(s)
            if i >= warm:
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def queries(app: Any) -> list[tuple[str, Callable[[Session], Any], int]]:
    d: Directory = app.dispatcher.directory
    district, township = d.district, d.resolve("花园街道")
    village = d.resolve("花园街道/上洋村")
    week = last_week(TODAY)
    assert village is not None and township is not None
    post: dict[str, Any] = {"text": "上洋村村民反映宅基地审批问题需要协调处理,情绪激动", "village_id": village.id}
    post["township_id"] = township.id
    t = Issue.__table__.c  # type: ignore[attr-defined]
    floor = select(t.township_id, func.count()).group_by(t.township_id)
    return [
        ("floor: GROUP BY issues.township_id", lambda s: s.execute(floor).all(), 1),
        ("统计 district, one year", lambda s: count_levels(s, YEAR, district, NOW), 1),
        ("统计 one township (花园街道)", lambda s: count_levels(s, YEAR, township, NOW), 1),
        ("weekly digest's query (district)", lambda s: week_of(s, district, week, year_of(week), TODAY, NOW), 1),
        (
            "/api/stats (count_levels + township_rows)",
            lambda s: (count_levels(s, YEAR, district, NOW), township_rows(s, district, d, YEAR, TODAY)),
            1,
        ),
        ("列表 first page (district, 待办)", lambda s: list_issues(s, district, "d001", "待办", TODAY, 1), 1),
        ("列表 逾期 first page (district)", lambda s: list_issues(s, district, "d001", "逾期", TODAY, 1), 1),
        ("列表 逾期 first page (one village)", lambda s: list_issues(s, village, "v001", "逾期", TODAY, 1), 1),
        ("overdue ladder's read (ladder.reached)", lambda s: ladder_read(s), 1),
        ("inbox: pending, oldest first", lambda s: pending_inbox(s), 1),
        # Past psycopg's prepare threshold (5) and PostgreSQL's switch to a generic plan (5 more).
        ("a new 上报's near-duplicate look-up", lambda s: near_duplicates(s, d, post, NOW), 12),
    ]  # fmt: skip


def served_stats(app: Any) -> float:
    """/api/stats as bot.web.api.load_stats runs it: count_levels and township_rows each on its
    own connection at once (median of RUNS after one warm-up)."""
    d: Directory = app.dispatcher.directory

    def read(call: Callable[[Session], Any]) -> Any:
        with Session(app.engine) as s:
            return call(s)

    calls: list[Callable[[Session], Any]] = [
        lambda s: count_levels(s, YEAR, d.district, NOW),
        lambda s: township_rows(s, d.district, d, YEAR, TODAY),
    ]
    times = []
    with ThreadPoolExecutor(2) as pool:
        for i in range(1 + RUNS):
            t = time.perf_counter()
            list(pool.map(read, calls))
            if i:
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def ladder_read(s: Session) -> int:
    """What the overdue ladder reads each working day (schedules.ladder.reached): the cases near
    or past their deadline with a step left, the steps already taken, and the cases to act on."""
    return sum(len(v) for v in reached(s, TODAY, CALENDAR, False).values())


def ladder_steady(engine: Engine) -> tuple[int, float]:
    """The ladder's read once it has run every working day: the seed writes no ladder steps, so
    every case past its deadline still has all of them to take (what the first run ever sends).
    Here every step reached by the previous working day is written (cases settled as
    schedules.ladder.settle marks them) and committed, as in service; on PostgreSQL the tables
    are then vacuumed, as autovacuum would (uncommitted or dead row versions cost every
    index-only scan heap fetches). The read is timed, and the steps are taken back out: the
    database is left as it was (the seed settles no case)."""
    yesterday = _previous_workday(TODAY)
    reached_by = {
        step: _latest_deadline(yesterday, after) for step, after in (("overdue", 1), ("leads", 2), ("district", 5))
    }
    reached_by["due_soon"] = CALENDAR.next_workday(yesterday)
    at = NOW.astimezone(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        for step, latest in reached_by.items():
            low = " AND deadline > :y" if step == "due_soon" else ""
            conn.execute(
                text(
                    "INSERT INTO ladder_steps (issue_id, deadline, step, sent_at, outbox_key)"
                    " SELECT id, deadline, CAST(:step AS VARCHAR), :at, 'bench' FROM issues i WHERE status = 'assigned'"
                    f" AND owner_id IS NOT NULL AND deadline <= :latest{low} AND NOT EXISTS (SELECT 1 FROM ladder_steps"
                    " l WHERE l.issue_id = i.id AND l.deadline = i.deadline AND l.step = CAST(:step AS VARCHAR))"
                ),
                {"step": step, "at": at, "latest": latest, "y": yesterday},
            )
        conn.execute(
            text("UPDATE issues SET ladder_settled = deadline WHERE status = 'assigned' AND deadline <= :latest"),
            {"latest": reached_by["district"]},
        )
    _vacuum(engine)
    try:
        with Session(engine) as s:
            n = len(near_deadlines(s, CALENDAR.next_workday(TODAY)))
        seconds = timed(engine, ladder_read)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM ladder_steps WHERE outbox_key = 'bench'"))
            conn.execute(text("UPDATE issues SET ladder_settled = NULL WHERE ladder_settled IS NOT NULL"))
        _vacuum(engine)
    return n, seconds


def _vacuum(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE issues, ladder_steps"))


def _previous_workday(d: date) -> date:
    d -= timedelta(days=1)
    while not CALENDAR.is_workday(d):
        d -= timedelta(days=1)
    return d


def _latest_deadline(day: date, late: int) -> date:
    """The latest deadline at least `late` working days past on `day` (1: any day before it)."""
    d = day - timedelta(days=1)
    while CALENDAR.workdays_between(d, day) < late:
        d -= timedelta(days=1)
    return d


def digest_job(app: Any) -> tuple[int, int, float]:
    """The whole weekly digest job as it runs on Monday 09:00, with a group bound to every unit
    (the district, each township and village: a province's deployment binds them all), run as
    `liandong digest` previews it (done and rolled back); the bindings are taken out after.
    Returns (groups, messages, median seconds of 3 runs)."""
    monday = datetime.combine(TODAY - timedelta(days=TODAY.weekday()), dtime(9, 0), SHANGHAI)
    runner = app.job_runner(FrozenClock(monday.astimezone(UTC)))
    with Session(app.engine) as s:
        bound = set(s.execute(select(col(GroupBinding.unit_id))).scalars())
        for unit in app.dispatcher.directory.units.values():
            if unit.id not in bound and unit.kind in ("district", "township", "village"):
                s.add(GroupBinding(conversation_id=f"bench-{unit.id}", unit_id=unit.id, source="bench"))
        s.commit()
        groups = s.execute(select(func.count()).select_from(GroupBinding)).scalar_one()
    try:
        times, messages = [], 0
        for _ in range(3):
            t = time.perf_counter()
            result = runner.run("weekly_digest", None, trigger="manual", dry_run=True)
            times.append(time.perf_counter() - t)
            messages = len(result.sent)
    finally:
        with app.engine.begin() as conn:
            conn.execute(text("DELETE FROM group_bindings WHERE source = 'bench'"))
    return groups, messages, statistics.median(times)


def measure(app: Any) -> None:
    engine = app.engine
    results = []
    for label, call, warm in queries(app):
        results.append((label, timed(engine, call, warm=warm)))
    if engine.dialect.name == "postgresql":  # the near-duplicate look-up, forced onto a generic plan

        def generic(s: Session) -> Any:
            s.execute(text("SET plan_cache_mode = force_generic_plan"))
            try:
                return queries(app)[-1][1](s)
            finally:
                s.execute(text("RESET plan_cache_mode"))

        results.append(("  the same, plan_cache_mode = force_generic_plan", timed(engine, generic, warm=12)))
    results.insert(5, ("  the same as served: both reads side by side", served_stats(app)))
    cases, seconds = ladder_steady(engine)
    results.append((f"  the ladder's read once it runs daily ({cases:,} cases)", seconds))
    floor = results[0][1]
    print(f"\n{'query':<52} {'median':>10} {'× floor':>9}")
    for label, seconds in results:
        print(f"{label:<52} {seconds * 1000:8.1f} ms {seconds / floor:8.2f}×")
    groups, messages, seconds = digest_job(app)
    print(f"\nweekly digest job, {groups} groups bound, {messages} messages: {seconds:.1f} s (median of 3 runs)")


def explain(app: Any) -> None:
    """The plan of every statement the hot reads run (captured while running them once)."""
    engine = app.engine
    pg = engine.dialect.name == "postgresql"
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and statement not in [s for s, _ in seen]:
            seen.append((statement, parameters))

    for label, call, _warm in queries(app):
        seen.clear()
        event.listen(engine, "before_cursor_execute", capture)
        with Session(engine) as s:
            call(s)
        event.remove(engine, "before_cursor_execute", capture)
        print(f"\n=== {label}")
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            cur = raw.cursor()
            for statement, params in seen:
                cur.execute(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + statement, params)
                plan = [str(r[0]) if pg else f"{'  ' * (r[1] > 0)}{r[3]}" for r in cur.fetchall()]
                print("--", " ".join(statement.split())[:160])
                print("\n".join("   " + line[:300] for line in plan))  # an IN list of ids runs long
                if pg and isinstance(params, dict) and params and len(params) <= GENERIC_MAX_PARAMS:
                    print("   generic plan (plan_cache_mode = force_generic_plan):")
                    print("\n".join("     " + line for line in generic_plan(conn, statement, params)))
    if pg:  # the near-duplicate look-up as a prepared statement on its generic plan
        import psycopg
        from sqlalchemy.dialects import postgresql

        compiled = _BY_VILLAGE.compile(dialect=postgresql.dialect(paramstyle="numeric_dollar"))
        village = app.dispatcher.directory.resolve("花园街道/上洋村")
        given = {"since": NOW - timedelta(days=30), "until": NOW, "village_id": village.id}
        values = [given.get(name, compiled.params[name]) for name in compiled.positiontup or []]
        print(
            f"\n=== near-duplicate look-up, prepared, plan_cache_mode = force_generic_plan ({len(values)} parameters)"
        )
        with engine.connect() as conn:
            conn.execute(text("SET plan_cache_mode = force_generic_plan"))
            conn.exec_driver_sql(f"PREPARE near_dup AS {compiled}")
            cur = psycopg.ClientCursor(conn.connection.driver_connection)  # the values inlined
            cur.execute(f"EXPLAIN EXECUTE near_dup({', '.join(['%s'] * len(values))})", values)
            print("\n".join("   " + str(r[0]) for r in cur.fetchall()))
            conn.exec_driver_sql("DEALLOCATE near_dup")


GENERIC_MAX_PARAMS = 50  # a statement with more (an IN list of ids) is not prepared the same each time


def generic_plan(conn: Any, statement: str, params: dict[str, Any]) -> list[str]:
    """The plan PostgreSQL uses for this statement once prepared and on its generic plan (what a
    pooled connection runs after psycopg's prepare threshold and PostgreSQL's fifth execution)."""
    import re

    import psycopg

    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    numbered = re.sub(r"%\((\w+)\)s", number, statement)
    raw = conn.connection.driver_connection
    raw.execute("SET plan_cache_mode = force_generic_plan")
    raw.execute(f"PREPARE liandong_generic AS {numbered}")
    try:
        cur = psycopg.ClientCursor(raw)  # the values inlined into EXECUTE
        cur.execute(f"EXPLAIN EXECUTE liandong_generic({', '.join(['%s'] * len(names))})", [params[n] for n in names])
        return [str(r[0]) for r in cur.fetchall()]
    finally:
        raw.execute("DEALLOCATE liandong_generic")
        raw.execute("RESET plan_cache_mode")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--issues", type=int, default=1_000_000)
    ap.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="measure the database an earlier run built")
    ap.add_argument("--explain", action="store_true", help="print the plans of the hot statements")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="liandong-counts-"))
    url = args.db or f"sqlite:///{folder}/bench-counts.db"
    if url.startswith("sqlite") and not args.reuse:
        Path(url.split("///", 1)[1]).unlink(missing_ok=True)
    org = Path(url.split("///", 1)[1]).with_name("bench-counts-org.yaml") if url.startswith("sqlite") else None
    if org is None or not (args.reuse and org.exists()):
        org = write_org(org.parent if org else folder)
    app = build(Settings(database_url=url, org_file=org), FrozenClock(NOW.astimezone(UTC)))
    directory = app.dispatcher.directory
    townships = sum(u.kind == "township" for u in directory.units.values())
    villages = sum(u.kind == "village" for u in directory.units.values())
    with Session(app.engine) as s:
        have = s.execute(select(func.count()).select_from(Issue)).scalar_one()
    if args.reuse:
        print(f"reusing {have:,} issues at {app.engine.url.render_as_string()}")
    else:
        if have:
            print(f"{url} already holds {have:,} issues: use an empty database, or --reuse", file=sys.stderr)
            return 2
        events, facts, seconds = seed(app.engine, directory, args.issues)
        print(
            f"seeded {args.issues:,} issues, {events:,} events ({events / args.issues:.1f} each), {facts:,} count rows"
            f" in {seconds:.0f} s; {townships} townships, {villages} villages; {url}"
        )
        t = time.perf_counter()
        analyze(app.engine)
        print(f"ANALYZE in {time.perf_counter() - t:.0f} s")
    if args.explain:
        explain(app)
    measure(app)
    app.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
