"""`org sync` at district scale against the local emulator: 18 townships × 17 villages, N
people (5,000 by default, cursor-paged 100 at a time). Prints the median of R runs for reading
the contact list, planning the diff, the first sync (everyone added) and a no-op sync, and the
number of contact API calls a read takes.

    .venv/bin/python -m bench.contacts [--people 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root


from bench.emulated import serve_emulator
from bot.app import build
from bot.config import Settings
from bot.contacts.sync import diff, fetch, sync
from bot.sandbox.emulator import Emulator

TOWNSHIPS, VILLAGES = 18, 17


def org_file(folder: Path) -> Path:
    lines = ["district: {name: 测试区}", "townships:"]
    for t in range(TOWNSHIPS):
        lines += [f"  - name: 镇{t:02d}", f"    dingtalk_dept: {100 + t}", "    villages:"]
        lines += [f"      - {{name: 镇{t:02d}村{v:02d}, dingtalk_dept: {1000 + t * 100 + v}}}" for v in range(VILLAGES)]
    path = folder / "org.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def seed(emulator: Emulator, people: int) -> None:
    c = emulator.contacts
    for t in range(TOWNSHIPS):
        c.add_dept(f"镇{t:02d}", dept_id=100 + t)
        for v in range(VILLAGES):
            c.add_dept(f"镇{t:02d}村{v:02d}", parent=100 + t, dept_id=1000 + t * 100 + v)
    villages = [1000 + t * 100 + v for t in range(TOWNSHIPS) for v in range(VILLAGES)]
    for i in range(people):
        c.add_user(f"u{i:06d}", f"人员{i}", villages[i % len(villages)])


async def main(people: int, runs: int) -> None:
    emulator, runner = await serve_emulator()
    url = emulator.base_url
    seed(emulator, people)
    reads, plans, firsts, noops, calls = [], [], [], [], 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                database_url=f"sqlite:///{folder}/bench.db",
                org_file=org_file(Path(folder)),
                client_id="sandbox-id",
                client_secret="sandbox-secret",
            )
            settings = dataclasses.replace(settings, openapi_endpoint=url, oapi_endpoint=url)
            app = build(settings)
            before = sum(emulator.contacts.calls.values())
            t0 = time.perf_counter()
            snap = await fetch(settings)
            reads.append(time.perf_counter() - t0)
            calls = sum(emulator.contacts.calls.values()) - before
            t0 = time.perf_counter()
            diff(app.engine, app.org, snap)
            plans.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            added = sync(app.engine, app.org, snap)
            firsts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again = sync(app.engine, app.org, snap)
            noops.append(time.perf_counter() - t0)
            assert len(added) == people and not again
            app.engine.dispose()
    await runner.cleanup()
    print(f"people {people}, departments {1 + TOWNSHIPS * (1 + VILLAGES)}, contact API calls per read {calls}")
    for label, values in (
        ("read contacts", reads),
        ("plan (diff)", plans),
        ("first sync", firsts),
        ("no-op sync", noops),
    ):
        print(f"{label:14s} median {statistics.median(values) * 1000:8.1f} ms  ({runs} runs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.people, args.runs))
