"""What the benches that talk to a local DingTalk share: the emulator served on a free loopback
port, and Settings for an app that sends to it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiohttp import web

from bot.config import Settings
from bot.sandbox.emulator import ROBOT_CODE, Emulator


async def serve_emulator() -> tuple[Emulator, web.AppRunner]:
    """The emulator on 127.0.0.1 (a free port), its base_url set; clean up with runner.cleanup()."""
    emulator = Emulator()
    runner = web.AppRunner(emulator.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    emulator.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return emulator, runner


def settings_for(url: str, emulator: Emulator) -> Settings:
    """An app on this database whose credentials the emulator accepts."""
    return Settings(
        database_url=url,
        photos_dir=Path(tempfile.mkdtemp(prefix="liandong-bench-photos-")),
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        robot_code=ROBOT_CODE,
    )
