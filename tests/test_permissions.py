"""Every verb × every role × in scope / out of scope: allowed commands change state, refused
ones change nothing and are recorded. The expectations below restate PRODUCT §3 on their own."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlmodel import Session

from bot.app import build
from bot.config import Settings
from bot.dispatch import Dispatcher
from models.clock import SHANGHAI, FrozenClock
from models.db import make_engine
from models.tables import InboxMessage
from tests.conftest import Chat
from tests.databases import copy_of, database_url

T0 = datetime(2020, 3, 2, 9, 0, tzinfo=SHANGHAI)
# One actor per role; "in" targets live under 花园街道/上洋村, "out" targets under 航埠镇/新村.
ACTORS = {
    "village_staff": "v001",
    "township_staff": "t001",
    "township_lead": "t101",
    "district_lead": "d001",
    "department": "p001",
    "admin": "a001",
}
LEVEL_OF_ROLE = {
    "village_staff": "V",
    "township_staff": "T",
    "township_lead": "T",
    "district_lead": "D",
    "department": "D",
    "admin": "D",
}
# Issue numbers made by _build_template, per tree: V, V2, T, T2, D, D2, RV, RT, RD.
SLOTS = ("V", "V2", "T", "T2", "D", "D2", "RV", "RT", "RD")
TREE = {"in": {s: i + 1 for i, s in enumerate(SLOTS)}, "out": {s: i + 10 for i, s in enumerate(SLOTS)}}

VS, TS, TL, DL, DP, AD = ACTORS
BOTH = ("in", "out")
EVERYONE = {(r, s) for r in ACTORS for s in BOTH}
ALLOWED: dict[str, set[tuple[str, str]]] = {
    "上报(新)": EVERYONE,
    "上报": {(VS, "in"), (TS, "in"), (TL, "in")},
    "研判": {(VS, "in"), (TS, "in"), (TL, "in"), (DL, "in"), (DL, "out"), (AD, "in"), (AD, "out")},
    "交办": {(VS, "in"), (TL, "in"), (DL, "in"), (DL, "out")},
    "反馈": {(VS, "in"), (TS, "in"), (TL, "in"), (DL, "in"), (DL, "out"), (AD, "in"), (AD, "out"), (DP, "in")},
    "办结": {(VS, "in"), (TL, "in"), (DL, "in"), (DL, "out"), (DP, "in")},
    "退回": {(TL, "in"), (DL, "in"), (DL, "out")},
    "重办": {(VS, "in"), (TL, "in"), (DL, "in"), (DL, "out")},
    "延期": {(DP, "in")},
    "同意延期": {(DL, "in"), (DL, "out")},
    "不同意延期": {(DL, "in"), (DL, "out")},  # whoever may approve a request may refuse it
    "合并": {(VS, "in"), (TL, "in"), (DL, "in"), (DL, "out")},
    "不满意": {(VS, "in")},
    "满意": {(VS, "in")},  # the 回访 card's other button: the reporter only, as 不满意
    "已知悉": {(DP, "in")},  # the 督办 card's button: the 包案人 only
    "督办": {(DL, "in"), (DL, "out")},
    "改": {(VS, "in"), (TL, "in"), (DL, "in"), (DL, "out")},  # the reporter, or the current level's lead
    "查": {(r, "in") for r in ACTORS} | {(DL, "out"), (AD, "out")},
    "列表": EVERYONE,
    "统计": EVERYONE,
    "帮助": EVERYONE,
    "绑定": {(AD, "in"), (AD, "out")},
    "角色": {(AD, "in"), (AD, "out")},
}
# 满意 confirms a result and 已知悉 acknowledges a 督办: neither changes anything
READ_ONLY = {"查", "列表", "统计", "帮助", "满意", "已知悉"}
# The 包案人 a 交办 names: someone of the acting level (its unit or below), as 交办 requires.
OWNER_AT = {"V": "v002", "T": "t001", "D": "d002"}


def _command(verb: str, role: str, scope: str) -> tuple[str, tuple[str, ...]]:
    tree, lvl = TREE[scope], LEVEL_OF_ROLE[role]
    n, m, r = tree[lvl], tree[lvl + "2"], tree["R" + lvl]
    if verb == "研判" and lvl == "D":
        n = tree["D2"]  # the D issue is already assigned
    unit = "花园街道" if scope == "in" else "航埠镇"
    village = "上洋村" if scope == "in" else "航埠镇/新村"
    return {
        "上报(新)": ("上报 新发现某处违建,邻居多次投诉无果", ()),
        "上报": (f"上报 #{n} 需要上级协调", ()),
        "研判": (f"研判 #{n} 需协调处理 风险:中", ()),
        "交办": (f"交办 #{n} 限5天", (OWNER_AT[lvl],)),
        "反馈": (f"反馈 #{n} 已走访当事人", ()),
        "办结": (f"办结 #{n} 已解决", ()),
        "退回": (f"退回 #{n} 请核实", ()),
        "重办": (f"重办 #{r} 仍有异议", ()),
        "延期": (f"延期 #{n} 2个工作日 等材料", ()),
        "同意延期": (f"同意延期 #{n}", ()),
        "不同意延期": (f"不同意延期 #{n} 请按期办结", ()),
        "合并": (f"合并 #{n} #{m}", ()),
        "不满意": (f"不满意 #{r} 没解决", ()),
        "满意": (f"满意 #{r}", ()),
        "已知悉": (f"已知悉 #{n}", ()),
        "督办": (f"督办 #{n}", ()),
        "改": (f"改 #{n} 类别=劳资纠纷", ()),
        "查": (f"查 #{n}", ()),
        "列表": ("列表 全部", ()),
        "统计": ("统计 2020", ()),
        "帮助": ("帮助", ()),
        "绑定": (f"绑定 {unit}", ()),
        "角色": (f"角色 @v002 村干部 {village}", ("v002",)),
    }[verb]


def _tree(chat: Chat, reporter: str, lead: str, dept_person: str) -> None:
    text = "上报 村民反映宅基地审批迟迟没有结果,情绪激动"
    for _ in range(2):  # V, V2
        chat.say(reporter, text)
    for _ in range(2):  # T, T2
        n = chat.say(reporter, text).issue_id
        chat.say(reporter, f"上报 #{n}")
    n = chat.say(reporter, text).issue_id  # D: assigned, with an extension pending
    chat.say(reporter, f"上报 #{n}")
    chat.say(lead, f"上报 #{n}")
    chat.say("d003", f"交办 #{n} 限10个工作日", mentions=(dept_person,))
    chat.say(dept_person, f"延期 #{n} 3个工作日 等待鉴定")
    n = chat.say(reporter, text).issue_id  # D2: at district, not assigned
    chat.say(reporter, f"上报 #{n}")
    chat.say(lead, f"上报 #{n}")
    n = chat.say(reporter, text).issue_id  # RV
    chat.say(reporter, f"办结 #{n} 已调解")
    n = chat.say(reporter, text).issue_id  # RT
    chat.say(reporter, f"上报 #{n}")
    chat.say(lead, f"办结 #{n} 已协调")
    n = chat.say(reporter, text).issue_id  # RD
    chat.say(reporter, f"上报 #{n}")
    chat.say(lead, f"上报 #{n}")
    chat.say("d003", f"交办 #{n}", mentions=(dept_person,))
    chat.say(dept_person, f"办结 #{n} 已化解")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    clock = FrozenClock(T0)
    app = build(Settings(database_url=database_url(tmp_path_factory.mktemp("perm"), "template")), clock)
    chat = Chat(app, clock)
    _tree(chat, "v001", "t101", "p001")
    _tree(chat, "v004", "t102", "p002")
    assert chat.issue(9).status == chat.issue(18).status == "resolved"
    assert chat.issue(5).extension_days == 3 and chat.issue(14).owner_id == "p002"
    app.engine.dispose()
    return app.settings.database_url


CASES = [(verb, role, scope) for verb in ALLOWED for role in ACTORS for scope in BOTH]


@pytest.mark.parametrize(("verb", "role", "scope"), CASES, ids=[f"{v}-{r}-{s}" for v, r, s in CASES])
def test_permission(template: str, tmp_path: Path, verb: str, role: str, scope: str) -> None:
    engine = make_engine(copy_of(template, tmp_path, "case"))
    clock = FrozenClock(T0)
    chat = Chat(SimpleNamespace(engine=engine, dispatcher=Dispatcher(engine, clock=clock)), clock)  # type: ignore[arg-type]
    text, mentions = _command(verb, role, scope)
    before = chat.state()
    outcome = chat.say(ACTORS[role], text, mentions=mentions, msg_id="case")
    allowed = (role, scope) in ALLOWED[verb]
    assert outcome.outcome == ("ok" if allowed else "refused"), outcome.reply
    assert len(outcome.reply.splitlines()) == 1 or allowed or verb == "帮助"
    changed = chat.state() != before
    assert changed == (allowed and verb not in READ_ONLY)
    with Session(engine) as s:
        row = s.get(InboxMessage, "case")
        assert row is not None and row.outcome == outcome.outcome
        assert (row.reason is not None) == (not allowed)
    engine.dispose()
