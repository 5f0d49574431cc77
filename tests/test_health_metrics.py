"""/metrics: the Prometheus text format (as prometheus_client's own parser reads it), counts
read from the shared database that move when a message comes in through DingTalk and its reply
goes out, failures by cause, and this process's receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build
from bot.config import Settings
from bot.sandbox.emulator import Emulator
from bot.web import create_web_app
from bot.web.metrics import cause
from models.clock import SHANGHAI, FrozenClock
from schedules.context import JobContext
from schedules.jobs import JobSpec
from schedules.runs import JobRunner
from schedules.timing import mondays
from tests.conftest import Chat
from tests.dingtalk import settings
from tests.test_health import serving

SUNDAY = datetime(2020, 11, 15, 12, 0, tzinfo=SHANGHAI)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: aiohttp.ClientSession, url: str) -> Samples:
    async with http.get(f"{url}/metrics") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await r.text())


async def test_counters_move_when_a_message_is_answered_through_dingtalk(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, _ = emulator_server
    app = build(settings(tmp_path))
    async with serving(app, emulator) as (url, http):
        before = await scrape(http, url)
        assert value(before, "liandong_receiver_up", mode="stream") == 1.0
        assert value(before, "liandong_database_up", error="") == 1.0
        assert value(before, "liandong_messages_received_total") == 0.0
        assert ("process_resident_memory_bytes", frozenset()) in before  # the process's own

        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", "上报 上洋村路灯坏了"))
        await emulator.wait_for(lambda: len(emulator.sent) == 1)
        assert emulator.sent[0].channel == "session" and "已登记" in emulator.sent[0].text

        async def recorded() -> Samples:
            # DingTalk has the reply; the sender records it just after: wait for that.
            for _ in range(500):
                samples = await scrape(http, url)
                if value(samples, "liandong_messages_sent_total", kind="reply", channel="session") == 1.0:
                    return samples
                await asyncio.sleep(0.02)
            raise AssertionError(f"reply not counted: {samples}")

        after = await recorded()
        assert value(after, "liandong_messages_received_total") == 1.0
        assert value(after, "liandong_messages_processed_total", outcome="ok") == 1.0
        assert value(after, "liandong_outbox_written_total") >= 1.0
        assert value(after, "liandong_outbox_pending", state="due") == 0.0
        assert value(after, "liandong_inbox_pending") == 0.0
        assert value(after, "liandong_outbox_oldest_due_age_seconds") == 0.0
        assert not [k for k in after if k[0] == "liandong_failures_total"]


def _boom(ctx: JobContext) -> int:
    raise ZeroDivisionError


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/m.db"
        return
    postgres = pytest.importorskip("tests.postgres")
    with postgres.fresh_database() as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_counts_stay_right_as_old_rows_settle(tmp_path: Path, kind: str) -> None:
    """The scrape keeps the totals of rows in their final state and reads only newer ones: each
    row is counted once however the scrapes and the writes interleave."""
    clock = FrozenClock(SUNDAY)
    with database(kind, tmp_path) as url:
        app = build(Settings(database_url=url, photos_dir=tmp_path / "photos"), clock)
        chat = Chat(app, clock)
        async with TestClient(TestServer(create_web_app(app, clock), host="127.0.0.1")) as client:

            async def counted() -> tuple[float, float, float]:
                samples = parse(await (await client.get("/metrics")).text())
                assert value(samples, "liandong_database_up", error="") == 1.0
                return (
                    value(samples, "liandong_messages_received_total"),
                    value(samples, "liandong_messages_processed_total", outcome="ok"),
                    value(samples, "liandong_messages_sent_total", kind="reply", channel="session"),
                )

            total, at = 0, SUNDAY
            for burst in (3, 2, 4):
                for n in range(burst):
                    assert chat.say("v001", f"上报 上洋村第{total + n}号路灯不亮", at=at).outcome == "ok"
                total += burst
                assert len([s for s in chat.received if "已登记" in s.text]) == total  # as DingTalk saw them
                assert await counted() == (total, total, total)
                at += timedelta(minutes=11)  # these rows are old now: the next scrape settles them
                clock.at = at
                assert await counted() == (total, total, total)
            # A sender not in the org file.
            refused = chat.say("nobody", "上报 路灯坏了", at=at, cid="cid-shangyang")
            assert refused.outcome == "refused"
            samples = parse(await (await client.get("/metrics")).text())
            assert value(samples, "liandong_messages_processed_total", outcome="refused") == 1.0
            assert value(samples, "liandong_messages_received_total") == total + 1
            # The clock moved back (the sandbox's 回到现在): what comes after is counted all the same.
            clock.at = at = SUNDAY - timedelta(days=1)
            assert chat.say("v001", "上报 上洋村井盖缺失", at=at).outcome == "ok"
            assert await counted() == (total + 2, total + 1, total + 2)  # the refusal had its reply too
        app.engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_job_runs_and_failures_by_cause_are_counted(tmp_path: Path, kind: str) -> None:
    with database(kind, tmp_path) as url:
        await _job_runs_counted(tmp_path, url)


async def _job_runs_counted(tmp_path: Path, url: str) -> None:
    clock = FrozenClock(SUNDAY)
    app = build(Settings(database_url=url, photos_dir=tmp_path / "photos"), clock)
    app.job_runner(clock).catch_up()  # five occurrences recorded as missed
    failing = JobRunner(
        app.engine, app.dispatcher.calendar, app.org.schedule, clock, jobs=[JobSpec("boom", "试验", mondays, _boom)]
    )
    assert failing.run("boom", None, trigger="manual").status == "failed"
    async with TestClient(TestServer(create_web_app(app, clock), host="127.0.0.1")) as client:
        r = await client.get("/metrics")
        samples = parse(await r.text())
        # What Prometheus itself asks for first: OpenMetrics, which its strict parser accepts.
        r = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        strict = {s.name: s for f in openmetrics_families(await r.text()) for s in f.samples}
        assert "liandong_job_runs_total" in strict and "liandong_outbox_oldest_due_age_seconds" in strict
    assert value(samples, "liandong_job_runs_total", job="boom", status="failed") == 1.0
    assert value(samples, "liandong_job_runs_total", job="weekly_digest", status="missed") == 1.0
    assert value(samples, "liandong_failures_total", stage="job", cause="ZeroDivisionError") == 1.0
    assert value(samples, "liandong_jobs_late") == 0.0
    # No receiver in this web app (as in the sandbox): no receiver gauge rather than a false 0.
    assert not [k for k in samples if k[0] == "liandong_receiver_up"]
    app.engine.dispose()


def test_a_failure_cause_is_its_kind_without_detail() -> None:
    assert cause("too large: 25000000 bytes") == "too large"
    assert cause("HTTP 400 invalidParameter") == "HTTP 400 invalidParameter"
    assert cause("errcode 130101") == "errcode 130101"
    assert cause(None) == "unknown" and cause("") == "unknown"
    assert len(cause("x" * 500)) == 40
