"""The stream watchdog: a connection that still answers websocket pings but carries no frame at
all (the gateway gave up on it: no push, not even its SYSTEM pings) is replaced, new one first;
a quiet connection that gets the gateway's pings is left alone. Against the local gateway
(the emulator), with the watchdog shortened to under a second."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestServer

from bot.app import build
from bot.sandbox.emulator import Emulator
from tests.dingtalk import settings, start_runtime

IDLE_S = 0.6


async def test_a_zombie_connection_is_replaced_and_what_waited_is_answered_once(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, server = emulator_server
    app = build(settings(tmp_path))
    runtime = await start_runtime(app, server, idle_s=IDLE_S)
    try:
        await emulator.wait_for(lambda: len(emulator.connections) == 1)
        (zombie,) = emulator.connections
        emulator.faults.zombies.add(zombie)  # open, pongs, but the gateway sends it nothing
        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", "上报 上洋村井盖缺失"))
        await emulator.wait_for(lambda: emulator.opened == 2, timeout=10)
        await emulator.wait_for(lambda: zombie not in emulator.connections, timeout=10)  # then closed
        await emulator.wait_for(lambda: len(emulator.sent) == 1, timeout=10)
        assert emulator.sent[0].text.startswith("已登记")
        assert runtime.stream is not None and runtime.stream.idle_replaced == 1
        assert len(emulator.connections) == 1
    finally:
        await runtime.stop()
        app.engine.dispose()
    assert len(emulator.sent) == 1


async def test_a_quiet_connection_that_gets_the_gateways_pings_is_kept(
    tmp_path: Path, emulator_server: tuple[Emulator, TestServer]
) -> None:
    emulator, server = emulator_server
    emulator.keepalive_s = IDLE_S / 3  # the gateway's own pings, at a third of the watchdog
    app = build(settings(tmp_path))
    runtime = await start_runtime(app, server, idle_s=IDLE_S)
    try:
        # Eight pings answered: well past the watchdog's limit (2.7 of it) with no message at all.
        await emulator.wait_for(lambda: sum(k.startswith("ping-") for k in emulator.acks) >= 8, timeout=20)
        assert emulator.opened == 1
        assert runtime.stream is not None and runtime.stream.idle_replaced == 0
    finally:
        await runtime.stop()
        app.engine.dispose()
