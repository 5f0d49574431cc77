"""DingTalk's gateway refuses to open connections for 30 s (connections/open answers 503) after
the socket drops, while messages keep arriving: they wait at DingTalk and come once the bot is
connected again. Nothing lost, nothing doubled, no restart; bounded: 40 messages, ~35 s."""

from __future__ import annotations

import asyncio
import time

from tests.dingtalk import Rig
from tests.faults.test_sigkill import numbers

N = 40
OUTAGE_S = 30.0
OPEN = "/v1.0/gateway/connections/open"


async def test_a_30_s_connection_open_outage_loses_nothing(rig: Rig) -> None:
    emulator = rig.emulator

    async def burst(first: int, count: int) -> None:
        for i in range(first, first + count):
            text = f"上报 上洋村第{i}号井盖缺失"
            await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", text))

    await burst(0, N // 2)
    await emulator.wait_for(lambda: len(set(numbers(emulator))) == N // 2, timeout=30)
    opened = emulator.opened
    emulator.faults.fail_next[OPEN] = 1_000_000  # every attempt to open a connection: 503
    await emulator.drop_all()
    await emulator.wait_for(lambda: not emulator.connections, timeout=10)
    started = time.monotonic()
    await burst(N // 2, N - N // 2)  # held at DingTalk: no connection to push them to
    # The fault's length, not a wait for the bot: the gateway refuses for this long whatever it does.
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
    refused = 1_000_000 - emulator.faults.fail_next[OPEN]
    assert emulator.opened == opened and len(set(numbers(emulator))) == N // 2
    emulator.faults.fail_next[OPEN] = 0
    ended = time.monotonic()
    await emulator.wait_for(lambda: len(set(numbers(emulator))) == N, timeout=30)
    recovered_s = time.monotonic() - ended
    got = numbers(emulator)
    lost, doubled = N - len(set(got)), len(got) - len(set(got))
    print(
        f"\nconnection-open outage: messages={N} outage={OUTAGE_S:.0f}s refused_opens={refused} lost={lost} "
        f"doubled={doubled} recovered_in={recovered_s:.1f}s restarts=0"
    )
    assert refused > 1  # the bot kept trying through the outage
    assert (lost, doubled) == (0, 0)
    assert rig.runtime.stream is not None and rig.runtime.stream.connected
