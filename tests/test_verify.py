"""`liandong verify` finds edited, deleted and inserted events."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.cli import main as cli
from tests.conftest import Chat


@pytest.fixture
def history(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> Chat:
    chat.say("v001", "上报 上洋村村民反映宅基地审批8个月未批复")
    chat.say("v001", "上报 #1 村里协调不了")
    chat.say("t101", "研判 #1 需区里协调 风险:高")
    chat.say("v002", "上报 上洋村道路塌方,影响通行")
    monkeypatch.setenv("DATABASE_URL", chat.app.settings.database_url)
    return chat


def _sql(chat: Chat, statement: str) -> None:
    with chat.app.engine.begin() as conn:
        conn.execute(text(statement))


def test_intact_chains_pass(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["verify"]) == 0
    assert "事件链完整" in capsys.readouterr().out


def test_edited_event_is_reported(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    edit = {  # the same tampering in each database's JSON functions
        "sqlite": "json_set(data, '$.opinion', '无需处理')",
        "postgresql": "CAST(jsonb_set(CAST(data AS jsonb), '{opinion}', '\"无需处理\"') AS json)",
    }[history.app.engine.dialect.name]
    _sql(history, f"UPDATE issue_events SET data = {edit} WHERE issue_id=1 AND seq=3")
    assert cli(["verify"]) == 1
    assert "#1: 第3条事件被修改" in capsys.readouterr().out


def test_deleted_middle_event_is_reported(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(history, "DELETE FROM issue_events WHERE issue_id=1 AND seq=2")
    assert cli(["verify"]) == 1
    assert "#1: 第2条事件缺失或多出" in capsys.readouterr().out


def test_deleted_last_event_is_reported(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(history, "DELETE FROM issue_events WHERE issue_id=1 AND seq=3")
    assert cli(["verify"]) == 1
    assert "#1: 事件数 2 与记录 3 不符" in capsys.readouterr().out


def test_all_events_of_an_issue_deleted(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(history, "DELETE FROM issue_events WHERE issue_id=2")
    assert cli(["verify"]) == 1
    assert "#2: 没有任何事件" in capsys.readouterr().out


def test_projection_edited_behind_the_events_back(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(history, "UPDATE issues SET status='resolved' WHERE id=1")
    assert cli(["verify"]) == 1
    assert "#1: 当前状态与事件不符(status)" in capsys.readouterr().out


def test_event_rehashed_after_edit_breaks_the_next_link(history: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    """A forger who recomputes the edited event's own hash still breaks the chain after it."""
    from sqlmodel import Session, select

    from models.lifecycle import event_hash
    from models.tables import IssueEvent

    with Session(history.app.engine) as s:
        ev = s.exec(select(IssueEvent).where(IssueEvent.issue_id == 1, IssueEvent.seq == 2)).one()
        ev.data = {**ev.data, "reason": "伪造"}
        ev.hash = event_hash(ev)
        s.add(ev)
        s.commit()
    assert cli(["verify"]) == 1
    assert "#1: 第3条事件的前序哈希不符" in capsys.readouterr().out
