"""The web app's memory while it serves the dashboard over a database bench/counts.py built:
the process's resident set (VmRSS) and its peak so far (VmHWM), after start-up and after each
of N requests of /dashboard and of /api/stats, with each request's time.

    .venv/bin/python bench/web_memory.py --db URL [--requests 8]

The app is built as `liandong run --web` builds it (the same org file counts.py seeded with)
and served on a loopback port in this process, which holds nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlmodel import Session

from bench.counts import NOW, write_org
from bot.app import build
from bot.config import Settings
from bot.web import create_web_app
from bot.web.auth import Tokens
from models.clock import FrozenClock
from models.tables import Issue

TOKEN = "bench-memory-token"


def memory() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process, in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


async def serve(url: str, requests: int) -> None:
    org = write_org(Path(tempfile.mkdtemp(prefix="liandong-memory-")))
    clock = FrozenClock(NOW.astimezone(UTC))
    app = build(Settings(database_url=url, org_file=org), clock)
    with Session(app.engine) as s:
        issues = s.execute(select(func.count()).select_from(Issue)).scalar_one()
    tokens = Tokens()
    tokens.add(TOKEN, app.dispatcher.directory.district)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    print(f"{issues:,} issues at {app.engine.url.render_as_string()}")
    rss, peak = memory()
    print(f"{'after start-up':<24} rss {rss:7.1f} MB   peak {peak:7.1f} MB")
    async with TestClient(TestServer(create_web_app(app, clock, tokens), host="127.0.0.1")) as client:
        for path in ("/dashboard", "/api/stats"):
            for k in range(1, requests + 1):
                t = time.perf_counter()
                r = await client.get(path, headers=headers)
                assert r.status == 200, (path, r.status)
                await r.read()
                seconds = time.perf_counter() - t
                rss, peak = memory()
                print(f"{path + ' #' + str(k):<24} rss {rss:7.1f} MB   peak {peak:7.1f} MB   {seconds * 1000:7.0f} ms")
    app.engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a database URL bench/counts.py built")
    ap.add_argument("--requests", type=int, default=8, help="requests of each page")
    args = ap.parse_args()
    asyncio.run(serve(args.db, args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
