"""Start-up errors are one clear line on stderr and a non-zero exit, never a traceback, and
never echo a secret: a bad --http address, a port in use, a URL nobody can read, a file that is
not a database, a server that is down, a folder that cannot be made, and credentials DingTalk
refuses (its gateway answers 401 authFailed; retrying never fixes that)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main

SECRET = "S3cretPassw0rd"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DINGTALK_CLIENT_ID", "sandbox-id")
    monkeypatch.setenv("DINGTALK_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/bot.db")
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def one_line(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert SECRET not in out + err
    return code, err.strip().splitlines()[-1] if err.strip() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", ":8080", "127.0.0.1:"])
def test_a_bad_http_address_is_refused_by_the_parser(
    env: Path, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["run", "--http", address])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "应为 HOST:PORT" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense://", "DATABASE_URL 无法识别"),
        (f"postgresql+nodriver://u:{SECRET}@127.0.0.1/db", "DATABASE_URL 无法识别"),
        (f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{{port}}/x", "无法打开数据库: connection failed"),
    ],
)
def test_a_database_url_that_cannot_be_used(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url.format(port=free_port()))  # nothing listens there
    for argv in (["migrate"], ["report", "--year", "2020"]):
        code, line = one_line(capsys, *argv)
        assert code == 4 and line.startswith(says), line


def test_a_file_that_is_not_a_database(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "bot.db").write_bytes(b"garbage, not a database" * 100)
    code, line = one_line(capsys, "migrate")
    assert (code, line) == (4, "无法打开数据库: file is not a database")
    assert (env / "bot.db").read_bytes().startswith(b"garbage")


def test_a_folder_that_cannot_be_made(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (env / "plain-file").write_text("x")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{env}/plain-file/bot.db")
    code, line = one_line(capsys, "migrate")
    assert code == 4 and line.startswith("启动失败:") and "plain-file" in line


def test_an_http_port_in_use(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, line = one_line(capsys, "run", "--no-web", "--http", f"127.0.0.1:{port}")
    assert (code, line) == (4, f"无法监听 127.0.0.1:{port}: 端口已被占用")


async def test_credentials_dingtalk_refuses_stop_the_bot_with_one_line(tmp_path: Path, emulator_server) -> None:  # type: ignore[no-untyped-def]
    emulator, _server = emulator_server
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
        "DINGTALK_CLIENT_ID": "sandbox-id",
        "DINGTALK_CLIENT_SECRET": SECRET,  # the emulator expects sandbox-secret
        "DINGTALK_OPENAPI_ENDPOINT": emulator.base_url,
    }
    cli = [sys.executable, "-m", "bot.cli"]
    migrate = await asyncio.create_subprocess_exec(*cli, "migrate", env=env, stdout=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(migrate.wait(), 60) == 0
    proc = await asyncio.create_subprocess_exec(
        *cli, "run", "--no-web", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode()
    assert proc.returncode == 4
    assert (
        text.strip().splitlines()[-1]
        == "钉钉拒绝了应用凭据 (authFailed): 请核对 DINGTALK_CLIENT_ID 与 DINGTALK_CLIENT_SECRET"
    )
    assert "Traceback" not in text and SECRET not in text
    assert not emulator.connections
