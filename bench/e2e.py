"""End to end through the local DingTalk emulator: N `上报` submissions into the bot
(`liandong run` on SQLite or PostgreSQL, as 1, 2 or 3 processes on one database, the emulator
spreading its pushes over their connections as DingTalk does) and, in the same run, the same N
into a bare SDK echo bot (the baseline). Prints messages/s until all replied, reply latency
p50/p99 in a burst and at a paced rate, lost and duplicated replies, the peak RSS of each bot
process (VmHWM), and the ratio to the baseline and to one process.

    .venv/bin/python -m bench.e2e [--n 5000] [--rate 200] [--db sqlite,postgres] [--procs 1,2,3]

PostgreSQL: a throwaway database on LIANDONG_TEST_POSTGRES (the local server by default), dropped
afterwards. `--rate 0` skips the paced phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.emulated import serve_emulator

NUMBER = re.compile(r"第(\d+)号")


@dataclass
class Result:
    name: str
    throughput: float
    burst_p50: float
    burst_p99: float
    paced_p50: float
    paced_p99: float
    lost: int
    duplicated: int
    peak_rss_mb: list[float] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (Linux VmHWM), read before it exits."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def database(kind: str, tmp: Path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/{name}.db"
        return
    from tests.postgres import fresh_database  # the suite's helper: a database of our own, dropped after

    with fresh_database() as url:
        yield url


async def run_one(name: str, command: list[str], n: int, rate: float, url: str, tmp: Path, procs: int = 1) -> Result:
    emulator, runner = await serve_emulator()
    env = {
        **os.environ,
        "DINGTALK_OPENAPI_ENDPOINT": emulator.base_url,
        "DINGTALK_CLIENT_ID": "sandbox-id",
        "DINGTALK_CLIENT_SECRET": "sandbox-secret",
        "DINGTALK_ROBOT_CODE": "dingsandboxrobot",
        "DATABASE_URL": url,
    }
    if name != "baseline":  # the deploy step: `liandong run` never migrates
        subprocess.run([sys.executable, "-m", "bot.cli", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    log = (tmp / f"{name}.log").open("wb")
    running = []
    for _ in range(procs):  # one after the other, so that each has its own connection
        running.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log))
        await emulator.wait_for(lambda: len(emulator.connections) == len(running), timeout=60)
    try:
        sent_at: dict[int, float] = {}
        replied: dict[int, list[float]] = {}
        seen = 0

        def collect() -> None:
            nonlocal seen
            for s in emulator.sent[seen:]:
                m = NUMBER.search(s.text)
                if m:
                    replied.setdefault(int(m.group(1)), []).append(s.at)
            seen = len(emulator.sent)

        async def phase(numbers: range, pace: float | None) -> tuple[float, list[float]]:
            start = time.time()
            for k, i in enumerate(numbers):
                if pace:
                    delay = start + k / pace - time.time()
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing the offered load, not synchronising
                payload = emulator.user_message(
                    "cid-shangyang", "v001", "张三", f"上报 第{i}号 上洋村道路塌方,影响通行"
                )
                sent_at[i] = time.time()
                await emulator.deliver(payload)

            def done() -> bool:
                collect()
                return all(i in replied for i in numbers)

            with contextlib.suppress(TimeoutError):
                await emulator.wait_for(done, timeout=max(120, len(numbers) / 20))
            collect()
            end = max((replied[i][0] for i in numbers if i in replied), default=time.time())
            return end - start, [replied[i][0] - sent_at[i] for i in numbers if i in replied]

        burst_s, burst = await phase(range(0, n), None)
        _, paced = await phase(range(n, 2 * n), rate) if rate else (0.0, [])
        lost = sum(1 for i in range((2 if rate else 1) * n) if i not in replied)
        duplicated = sum(len(v) - 1 for v in replied.values())
        rss = [peak_rss_mb(p.pid) for p in running]
        return Result(
            name,
            n / burst_s,
            pct(burst, 0.5),
            pct(burst, 0.99),
            pct(paced, 0.5),
            pct(paced, 0.99),
            lost,
            duplicated,
            rss,
        )
    finally:
        for p in running:
            p.terminate()
        for p in running:
            p.wait(timeout=60)
        log.close()
        emulator.close()
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--db", default="sqlite", help="sqlite, postgres or both (comma-separated)")
    parser.add_argument("--procs", default="1", help="process counts, e.g. 1,2,3")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liandong-bench-"))
    py = sys.executable
    with database("sqlite", tmp, "baseline") as url:
        baseline = await run_one(
            "baseline", [py, str(Path(__file__).with_name("echo_bot.py"))], args.n, args.rate, url, tmp
        )
    results = [baseline]
    for kind in args.db.split(","):
        for procs in (int(k) for k in args.procs.split(",")):
            with database(kind, tmp, f"{kind}{procs}") as url:
                command = [py, "-m", "bot.cli", "run", "--no-web"]
                results.append(await run_one(f"{kind}×{procs}", command, args.n, args.rate, url, tmp, procs))
    print(f"N={args.n} burst" + (f", then N at {args.rate:.0f}/s offered" if args.rate else "") + "; latencies in ms")
    print(
        f"{'bot':<12}{'msg/s':>8}{'×base':>7}{'×1 proc':>9}{'burst p50':>11}{'burst p99':>11}{'paced p50':>11}"
        f"{'paced p99':>11}{'lost':>6}{'dup':>5}  peak RSS MB"
    )
    single = {r.name.split("×")[0]: r.throughput for r in results if r.name.endswith("×1")}
    for r in results:
        one = single.get(r.name.split("×")[0])
        scale = f"{r.throughput / one:.2f}" if one and r is not baseline else "-"
        print(
            f"{r.name:<12}{r.throughput:>8.0f}{r.throughput / baseline.throughput:>7.2f}{scale:>9}"
            f"{r.burst_p50:>11.0f}{r.burst_p99:>11.0f}{r.paced_p50:>11.1f}{r.paced_p99:>11.1f}"
            f"{r.lost:>6}{r.duplicated:>5}  {', '.join(f'{m:.0f}' for m in r.peak_rss_mb)}"
        )
    if args.rate:
        paced = statistics.median([r.paced_p50 for r in results[1:]])
        print(f"median of the bots' paced p50 at {args.rate:.0f}/s: {paced:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
