"""The compose stack's own commands, run as processes on this machine (no container runtime here,
and the images' registry is out of reach): deploy/liandong.env.example with the compose
file's `environment:` on top, `migrate` once (and again, as the next deploy would), then
LIANDONG_REPLICAS bot replicas with the compose `bot` command, each passing the compose health
check, answering messages once each, and stopping within the compose stop grace period. What
the containers add (image build, volumes, Caddy's TLS) is checked statically in test_deploy.py.
DingTalk is the emulator on loopback; only the two endpoint settings point at it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from asyncio.subprocess import PIPE
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.org import SAMPLE
from bot.sandbox.emulator import Emulator
from tests.postgres import fresh_database
from tests.test_deploy import DEPLOY, compose

MESSAGES = 20
pytestmark = pytest.mark.postgres


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "liandong.env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            pairs[m.group(1)] = m.group(2)
    return pairs


def default_of(value: str) -> str:
    """`${NAME:-default}` → default, as compose substitutes an unset variable."""
    m = re.fullmatch(r"\$\{[A-Z_]+:-([^}]*)\}", str(value))
    assert m, value
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_port(argv: list[str], port: int) -> list[str]:
    """Each replica is its own container with 8081 to itself; side by side here, each gets a port."""
    return [re.sub(r":8081$", f":{port}", a) if a.startswith("0.0.0.0:") else a for a in argv]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def stack_env(pg_url: str, emulator: Emulator, tmp_path: Path, service: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINGTALK_", "LIANDONG_", "DATABASE_URL"))}
    env.update(env_example())
    overrides = {  # what an operator fills in, and the stack's own database
        "DATABASE_URL": pg_url,
        "LIANDONG_ORG_FILE": str(SAMPLE),
        "LIANDONG_PHOTOS_DIR": str(tmp_path / "photos"),
        "DINGTALK_CLIENT_ID": "sandbox-id",
        "DINGTALK_CLIENT_SECRET": "sandbox-secret",
        "DINGTALK_OPENAPI_ENDPOINT": emulator.base_url,
        "DINGTALK_OAPI_ENDPOINT": emulator.base_url,
    }
    for name in service["environment"]:
        assert name in overrides, f"compose sets {name}: the stack test must say what it is here"
    env.update(overrides)
    return env


async def run_once(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *argv, env=env, stdout=PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return int(proc.returncode or 0), out.decode("utf-8", "replace")


async def healthy(test: list[str], port: int, deadline_s: float) -> None:
    """The compose health check (its CMD, with this machine's python) until it passes."""
    assert test[0] == "CMD" and test[1] == "python"
    argv = [sys.executable, *(a.replace("127.0.0.1:8081", f"127.0.0.1:{port}") for a in test[2:])]
    deadline = time.monotonic() + deadline_s
    while True:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL, stderr=PIPE)
        _, err = await proc.communicate()
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"health check on :{port} still failing: {err.decode()[-500:]}")
        await asyncio.sleep(0.5)


async def test_the_compose_stack_migrates_once_runs_its_replicas_and_answers(
    pg_url: str, emulator: Emulator, tmp_path: Path
) -> None:
    services = compose()["services"]
    migrate, bot = services["migrate"], services["bot"]
    code, out = await run_once(migrate["command"], stack_env(pg_url, emulator, tmp_path, migrate))
    assert code == 0, out
    code, out = await run_once(migrate["command"], stack_env(pg_url, emulator, tmp_path, migrate))
    assert code == 0, out  # the next deploy runs it again on a migrated database

    replicas = int(default_of(bot["deploy"]["replicas"]))
    grace = float(str(bot["stop_grace_period"]).rstrip("s"))
    start_period = float(str(bot["healthcheck"]["start_period"]).rstrip("s"))
    env = stack_env(pg_url, emulator, tmp_path, bot)
    procs, ports, logs = [], [], []
    try:
        for i in range(replicas):
            ports.append(free_port())
            logs.append(tmp_path / f"bot{i}.log")
            with open(logs[-1], "wb") as log:
                procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "bot.cli", *with_port(bot["command"], ports[-1]),
                        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
                    )
                )  # fmt: skip
        await emulator.wait_for(lambda: len(emulator.connections) == replicas, timeout=60)
        for port in ports:
            await healthy(bot["healthcheck"]["test"], port, start_period)

        for i in range(MESSAGES):
            text = f"上报 上洋村第{i}号井盖缺失,影响通行"
            await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", text))
        await emulator.wait_for(lambda: len(emulator.sent) >= MESSAGES, timeout=60)
        replies = Counter(s.webhook for s in emulator.sent if s.channel == "session")
        assert len(replies) == MESSAGES and set(replies.values()) == {1}
        assert all(s.text.startswith("已登记 #") for s in emulator.sent)

        for p in procs:
            p.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        codes = [await asyncio.wait_for(p.wait(), grace) for p in procs]
        assert codes == [0] * replicas, [log.read_text()[-1500:] for log in logs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
