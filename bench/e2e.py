"""End to end through the local DingTalk emulator: N `上报` submissions into the bot
(`liandong run`, SQLite) and, in the same run, the same N into a bare SDK echo bot (the
baseline). Prints messages/s until all replied, reply latency p50/p99 in a burst and at a
paced rate, lost and duplicated replies, and the ratio ours/baseline.

    .venv/bin/python bench/e2e.py [--n 2000] [--rate 200]
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
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.sandbox.emulator import Emulator

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


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run_one(name: str, command: list[str], n: int, rate: float, tmp: Path) -> Result:
    emulator = Emulator()
    runner = web.AppRunner(emulator.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emulator.base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DINGTALK_OPENAPI_ENDPOINT": emulator.base_url,
        "DINGTALK_CLIENT_ID": "sandbox-id",
        "DINGTALK_CLIENT_SECRET": "sandbox-secret",
        "DINGTALK_ROBOT_CODE": "dingsandboxrobot",
        "DATABASE_URL": f"sqlite:///{tmp}/{name}.db",
    }
    if name == "liandong":  # the deploy step: `liandong run` never migrates
        subprocess.run([sys.executable, "-m", "bot.cli", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    log = (tmp / f"{name}.log").open("wb")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        await emulator.wait_for(lambda: len(emulator.connections) == 1, timeout=60)
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
        _, paced = await phase(range(n, 2 * n), rate)
        lost = sum(1 for i in range(2 * n) if i not in replied)
        duplicated = sum(len(v) - 1 for v in replied.values())
        return Result(
            name, n / burst_s, pct(burst, 0.5), pct(burst, 0.99), pct(paced, 0.5), pct(paced, 0.99), lost, duplicated
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        emulator.close()
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liandong-bench-"))
    py = sys.executable
    baseline = await run_one("baseline", [py, str(Path(__file__).with_name("echo_bot.py"))], args.n, args.rate, tmp)
    ours = await run_one("liandong", [py, "-m", "bot.cli", "run", "--no-web"], args.n, args.rate, tmp)
    print(f"N={args.n} burst, then N at {args.rate:.0f}/s offered; latencies in ms")
    print(
        f"{'bot':<10}{'msg/s':>9}{'burst p50':>11}{'burst p99':>11}{'paced p50':>11}{'paced p99':>11}"
        f"{'lost':>6}{'dup':>5}"
    )
    for r in (baseline, ours):
        print(
            f"{r.name:<10}{r.throughput:>9.0f}{r.burst_p50:>11.0f}{r.burst_p99:>11.0f}{r.paced_p50:>11.1f}"
            f"{r.paced_p99:>11.1f}{r.lost:>6}{r.duplicated:>5}"
        )
    print(f"ratio ours/baseline (msg/s): {ours.throughput / baseline.throughput:.2f}")
    print(f"median reply latency at {args.rate:.0f}/s: ours {statistics.median([ours.paced_p50]):.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
