"""The command line's configuration: `--org FILE` before or after any subcommand; one Settings
reads the environment; only `migrate`, `run` and `sandbox` prepare the database, the read-only
commands leave it as they found it, and a database without the schema is one line on stderr."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.app import build, open_app
from bot.cli import COMMANDS, main, make_parser
from bot.config import DEFAULT_ENDPOINT, Settings
from bot.org import SAMPLE
from models.clock import SHANGHAI, FrozenClock
from models.db import NOT_MIGRATED, SchemaNotReady, alembic_config, make_engine
from tests.conftest import Chat
from tests.databases import database_url, sqlite_only
from tests.scheduling import at, district_case

ROOT = Path(__file__).resolve().parent.parent
WAGES = "航埠镇新村拖欠工资23人,涉及金额40万元,工人准备集体上访"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- --org before or after the subcommand --------------------------------------------------------

# Each subcommand with the arguments it needs, as far as the parser is concerned.
EVERY_COMMAND = [
    ["run"],
    ["sandbox"],
    ["console"],
    ["report", "--year", "2020"],
    ["verify"],
    ["migrate"],
    ["schedule"],
    ["digest"],
    ["remind"],
    ["parse", "text"],
    ["export", "-o", "x.csv"],
    ["token", "new", "--unit", "航埠镇"],
    ["outbox"],
    ["org", "diff"],
]


def test_every_command_is_covered_here() -> None:
    names = {c[0] for c in EVERY_COMMAND}
    assert names == {m.__name__.rsplit(".", 1)[-1] for m in COMMANDS}


@pytest.mark.parametrize("argv", EVERY_COMMAND, ids=lambda a: a[0])
def test_org_is_accepted_before_or_after_every_subcommand(argv: list[str]) -> None:
    parser = make_parser()
    assert parser.parse_args(["--org", "before.yaml", *argv]).org == "before.yaml"
    assert parser.parse_args([*argv, "--org", "after.yaml"]).org == "after.yaml"
    assert parser.parse_args(["--org", "before.yaml", *argv, "--org", "after.yaml"]).org == "after.yaml"
    assert parser.parse_args(argv).org is None


@pytest.fixture
def db(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> Chat:
    """The chat's database, with one case of 2020, for the CLI in this process."""
    district_case(chat, WAGES, "t002", at(date(2020, 3, 2)))
    monkeypatch.setenv("DATABASE_URL", chat.app.settings.database_url)
    monkeypatch.delenv("LIANDONG_ORG_FILE", raising=False)
    return chat


def test_report_with_org_after_or_before_the_subcommand(db: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    after = run(capsys, "report", "--year", "2020", "--org", str(SAMPLE))
    before = run(capsys, "--org", str(SAMPLE), "report", "--year", "2020")
    assert after == before
    code, out, err = after
    assert code == 0 and err == ""
    assert out.startswith('区级层面累计交办"两难"问题1件,已化解0件。')


def test_the_org_given_after_the_subcommand_is_the_one_read(
    db: Chat, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    code, _, err = run(capsys, "--org", str(SAMPLE), "report", "--year", "2020", "--org", str(missing))
    assert code == 2 and err.startswith("组织架构文件有误: ") and str(missing) in err
    code, out, _ = run(capsys, "--org", str(missing), "report", "--year", "2020", "--org", str(SAMPLE))
    assert code == 0 and "问题1件" in out


def test_token_new_takes_org_after_the_action(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    code, _, err = run(capsys, "token", "new", "--unit", "航埠镇", "--org", str(missing))
    assert code == 2 and str(missing) in err


# --- read-only commands never write -----------------------------------------------------------


def snapshot(path: Path) -> tuple[str, list[str]]:
    """The database file's bytes (by hash) and every row of every table."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        dump = list(conn.iterdump())
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest(), dump


def wal_frames(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A database migrated with the sample org, with cases, replies, reminders and a job run;
    every connection closed (so everything is in the main file). And an org file that differs
    from it (a renamed person, one more department): preparing would write those."""
    tmp = tmp_path_factory.mktemp("ro")
    path = tmp / "ro.db"
    clock = FrozenClock(datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI))
    app = build(Settings(database_url=f"sqlite:///{path}"), clock)
    chat = Chat(app, clock)
    district_case(chat, WAGES, "t002", at(date(2020, 11, 24)), "周二无会日 截止11月30日")
    chat.say("v001", "上报 上洋村村民反映宅基地审批8个月未批复", at=at(date(2020, 11, 25)))
    clock.at = at(date(2020, 12, 1), 10)
    app.job_runner(clock).catch_up()
    app.engine.dispose()
    assert wal_frames(path) == 0
    text = SAMPLE.read_text(encoding="utf-8")
    changed = text.replace("name: 张三,", "name: 张三丰,").replace(
        "  - {name: 区司法局, aliases: [司法局]}", "  - {name: 区司法局, aliases: [司法局]}\n  - {name: 区测试局}"
    )
    assert changed.count("张三丰") == 1 and "区测试局" in changed
    org = tmp / "org.yaml"
    org.write_text(changed, encoding="utf-8")
    return path, org


READ_ONLY = [
    ["report", "--year", "2020"],
    ["report", "--from", "2020-11-01", "--to", "2020-12-31", "--unit", "航埠镇"],
    ["verify"],
    ["export", "--format", "csv"],
    ["outbox"],
    ["outbox", "--pending", "--limit", "3"],
    ["schedule", "--at", "2020-12-01T12:00"],
    ["parse", "--sender-unit", "花园街道", "上洋村路灯坏了"],
    ["token", "new", "--unit", "航埠镇"],
]


@sqlite_only("the database file's bytes and its WAL (PostgreSQL: read-only transactions, below)")
@pytest.mark.parametrize("argv", READ_ONLY, ids=" ".join)
def test_a_read_only_command_leaves_the_database_as_it_was(
    argv: list[str],
    migrated: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path, org = migrated
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    before = snapshot(path)
    args = [*argv, "-o", str(tmp_path / "ledger.csv")] if argv[0] == "export" else argv
    code, out, err = run(capsys, *args, "--org", str(org))
    assert code == 0, err
    assert out and "Traceback" not in err
    assert snapshot(path) == before
    assert wal_frames(path) == 0  # nothing written beside the file either


@sqlite_only("the read-only fixture is a SQLite file")
def test_the_read_only_commands_print_from_the_database(
    migrated: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = migrated
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    code, out, _ = run(capsys, "report", "--year", "2020")
    assert code == 0 and "问题1件" in out and "村(社区)层面累计排摸1件" in out
    code, out, _ = run(capsys, "schedule", "--at", "2020-12-01T12:00")
    assert code == 0 and "· 上次 2020-12-01T08:30:00+08:00 done" in out


@pytest.mark.parametrize(
    "argv",
    [["digest", "--at", "2020-12-07T10:00"], ["remind", "--at", "2020-12-01T08:00", "--force"]],
    ids=" ".join,
)
@sqlite_only("the read-only fixture is a SQLite file")
def test_a_preview_by_digest_or_remind_writes_nothing(
    argv: list[str], migrated: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, org = migrated
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    before = snapshot(path)[1]
    code, out, _ = run(capsys, *argv, "--org", str(org))
    assert code == 0 and out.endswith("以上为预览,没有发送;加 --now 发送。\n")
    assert snapshot(path)[1] == before


@sqlite_only("SQLite's mode=ro (PostgreSQL's read-only transactions: below)")
def test_open_app_reads_through_a_connection_that_cannot_write(migrated: tuple[Path, Path]) -> None:
    path, _ = migrated
    with (
        open_app(Settings(database_url=f"sqlite:///{path}")) as app,
        app.engine.connect() as conn,
        pytest.raises(OperationalError, match=r"readonly database"),
    ):
        conn.exec_driver_sql("DELETE FROM outbox")
    assert snapshot(path)[1][-1] == "COMMIT;"  # the file is intact


# --- no schema: one line, no traceback, nothing created ---------------------------------------

NEED_THE_SCHEMA = [
    ["report", "--year", "2020"],
    ["verify"],
    ["export", "-o", "ledger.csv"],
    ["outbox"],
    ["schedule"],
    ["digest"],
    ["remind", "--now"],
    ["console"],
]


@sqlite_only("a missing file is never created (PostgreSQL's empty database: below)")
@pytest.mark.parametrize("argv", NEED_THE_SCHEMA, ids=" ".join)
def test_a_command_on_a_database_never_migrated_says_so_in_one_line(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data" / "never.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("builtins.input", lambda *_: pytest.fail("console read input"))
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (3, "", NOT_MIGRATED + "\n")
    assert not path.exists() and not path.parent.exists()


@sqlite_only("compares the file's bytes")
@pytest.mark.parametrize("argv", [["report", "--year", "2020"], ["outbox"], ["digest", "--now"]], ids=" ".join)
def test_a_command_on_an_older_schema_says_so_and_does_not_migrate(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # as an older version of the bot left it: the first migration only
        cfg = alembic_config(f"sqlite:///{path}")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    engine.dispose()
    before = snapshot(path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (3, "", NOT_MIGRATED + "\n")
    assert snapshot(path) == before
    assert run(capsys, "migrate")[:2] == (0, "数据库已是最新结构。\n")
    assert run(capsys, *argv)[0] == 0


def test_open_app_refuses_a_database_from_a_newer_version(tmp_path: Path) -> None:
    url = database_url(tmp_path, "new")
    with build(Settings(database_url=url)) as app, app.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('9999')")
    with pytest.raises(SchemaNotReady, match=r"数据库版本 \(9999\) 比本程序新"):
        open_app(Settings(database_url=url))


def test_migrate_prepares_a_fresh_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url(tmp_path / "data", "fresh", migrated=False))
    assert run(capsys, "migrate") == (0, "数据库已是最新结构。\n", "")
    code, out, _ = run(capsys, "report", "--year", "2020")
    assert code == 0 and "问题0件" in out


# --- one Settings reads the environment ---------------------------------------------------------

ENV_READ = re.compile(r"\bos\.environ\b|\bgetenv\b|\benviron\b")


def test_only_settings_reads_the_environment() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for package in ("bot", "handlers", "models", "schedules")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "bot" / "config.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ENV_READ.search(line)
    ]
    assert offenders == []
    assert ENV_READ.search((ROOT / "bot" / "config.py").read_text(encoding="utf-8"))


def test_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "sqlite:///x.db",
        "LIANDONG_ORG_FILE": "org.yaml",
        "DINGTALK_CLIENT_ID": "id",
        "DINGTALK_CLIENT_SECRET": "top-secret",
        "DINGTALK_OPENAPI_ENDPOINT": "http://127.0.0.1:9",
        "LIANDONG_CATEGORY_FILE": "c.yaml",
        "ROBOT_SECRET_A": "robot-secret",
    }
    s = Settings.from_env(environ=env)
    assert (s.database_url, s.org_file, s.client_id, s.client_secret) == (
        "sqlite:///x.db",
        Path("org.yaml"),
        "id",
        "top-secret",
    )
    assert (s.openapi_endpoint, s.category_file, s.robot_secrets) == ("http://127.0.0.1:9", Path("c.yaml"), {})
    assert Settings.from_env("other.yaml", environ=env).org_file == Path("other.yaml")
    assert s.robot_code == "id"  # an internal app's robot code is its AppKey: the ClientID unless set
    assert Settings.from_env(environ={**env, "DINGTALK_ROBOT_CODE": "dingrobot"}).robot_code == "dingrobot"
    assert Settings.from_env(environ={}) == Settings()
    assert Settings().openapi_endpoint == DEFAULT_ENDPOINT and Settings().category_file is None
    s = s.with_robot_secrets(["ROBOT_SECRET_A", "ROBOT_SECRET_B"], environ=env)
    assert s.robot_secrets == {"ROBOT_SECRET_A": "robot-secret", "ROBOT_SECRET_B": ""}
    assert "secret" not in repr(s) and "secret" not in str(s)


def test_the_app_reads_the_robot_secrets_the_org_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace(
        '  - {conversation_id: "cid-district", unit: 柯城区}',
        '  - {conversation_id: "cid-district", unit: 柯城区, robot: {webhook: "https://127.0.0.1:9/robot/send",'
        " secret_env: LD_TEST_CLI_ROBOT}}",
    )
    org = tmp_path / "org.yaml"
    org.write_text(text, encoding="utf-8")
    monkeypatch.setenv("LD_TEST_CLI_ROBOT", "SECcli")
    monkeypatch.setenv("LD_TEST_CLI_OTHER", "not-asked-for")
    app = build(Settings(database_url=database_url(tmp_path, "r"), org_file=org))
    app.engine.dispose()
    assert app.org.secret_envs == ("LD_TEST_CLI_ROBOT",)
    assert app.settings.robot_secrets == {"LD_TEST_CLI_ROBOT": "SECcli"}
    assert "SECcli" not in repr(app.settings)


@pytest.mark.postgres
def test_on_postgres_a_read_only_command_runs_in_read_only_transactions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.postgres import fresh_database

    with fresh_database() as url:
        monkeypatch.setenv("DATABASE_URL", url)
        assert run(capsys, "report", "--year", "2020") == (3, "", NOT_MIGRATED + "\n")
        assert run(capsys, "migrate")[0] == 0
        code, out, _ = run(capsys, "report", "--year", "2020", "--org", str(SAMPLE))
        assert code == 0 and "问题0件" in out
        with (
            open_app(Settings(database_url=url)) as app,
            app.engine.connect() as conn,
            pytest.raises(DBAPIError, match="read-only transaction"),
        ):
            conn.exec_driver_sql("DELETE FROM outbox")
