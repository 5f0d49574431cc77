"""The verb table is the one declaration of every chat verb: the grammar's words, 帮助, the usage
hints and the permission checks come from it, and the independent matrix in test_permissions
covers exactly its verbs. Then the permission fixes that the rules made expressible."""

from __future__ import annotations

import pytest

from handlers.verbs import ALIASES, HELP, VERBS, Verb, parse
from tests.conftest import Chat
from tests.test_permissions import ALLOWED

TEXT = "上报 上洋村村民反映宅基地审批迟迟没有结果,情绪激动"


def test_the_permission_matrix_covers_exactly_the_declared_verbs() -> None:
    declared = {v.name for v in VERBS} | {"上报(新)"}
    assert set(ALLOWED) == declared
    assert [v.name for v in VERBS if v.refs and v.may is None] == ["查"]  # reading needs scope only


def test_every_word_parses_to_its_verb_and_every_usage_is_a_valid_command() -> None:
    for name, words in ALIASES.items():
        assert words[0] == name
        assert {parse(f"{w} #3 说明").verb for w in words} == {name}
    for verb in VERBS:
        assert parse(verb.usage).verb == verb.name, verb.usage
        assert len(parse(verb.usage).refs) >= verb.refs, verb.usage


def test_help_names_every_verb_but_the_hidden_ones() -> None:
    lines = HELP.splitlines()
    assert lines[0] == "两难助手用法(先 @我):" and len(lines) <= 9
    for verb in VERBS:
        assert (verb.name in HELP) != verb.hidden or verb.name == "帮助", verb.name


@pytest.mark.parametrize("verb", [v for v in VERBS if v.refs and v.form is None], ids=lambda v: v.name)
def test_a_verb_without_its_numbers_quotes_its_usage(chat: Chat, verb: Verb) -> None:
    r = chat.say("v001", f"{verb.name} 说明")
    assert r.outcome == "refused" and f"「{verb.usage}」" in r.reply


def test_a_village_cannot_make_a_district_liaison_the_owner_of_its_case(chat: Chat) -> None:
    chat.say("v001", TEXT)
    before = chat.state()
    r = chat.say("v001", "交办 #1 限5天", mentions=("p001",))
    assert r.outcome == "refused" and "包案人应为上洋村" in r.reply and "上报 #1" in r.reply
    assert chat.state() == before
    r = chat.say("v001", "交办 #1 限5天", mentions=("v002",))
    assert r.outcome == "ok" and chat.issue(1).owner_id == "v002"


def test_a_township_assigns_within_its_own_villages_only(chat: Chat) -> None:
    chat.say("v001", TEXT)
    chat.say("v001", "上报 #1")
    assert chat.say("t101", "交办 #1", mentions=("v004",)).outcome == "refused"  # 航埠镇/新村
    assert chat.say("t101", "交办 #1", mentions=("d002",)).outcome == "refused"
    assert chat.say("t101", "交办 #1", mentions=("v001",)).outcome == "ok"


def test_merge_needs_lead_rights_over_both_cases(chat: Chat) -> None:
    chat.say("v001", TEXT)  # #1 at the village
    chat.say("v001", TEXT)  # #2, taken up to the township
    chat.say("v001", "上报 #2")
    before = chat.state()
    r = chat.say("t101", "合并 #2 #1")  # the township lead does not lead the village's #1
    assert r.outcome == "refused" and r.reply.startswith("合并需由本村(社区)干部操作")
    assert chat.state() == before
    r = chat.say("v001", "合并 #2 #1")  # nor does the village lead the township's #2
    assert r.outcome == "refused" and r.reply.startswith("合并需由乡镇(街道)领导操作")


def test_merge_refuses_a_resolved_target(chat: Chat) -> None:
    chat.say("v001", TEXT)
    chat.say("v001", TEXT)
    chat.say("v001", "办结 #1 已调解")
    before = chat.state()
    r = chat.say("v001", "合并 #1 #2")
    assert r.outcome == "refused" and "#1 已办结" in r.reply and "重办 #1" in r.reply
    assert chat.state() == before


def test_a_merged_reporter_may_answer_the_revisit_that_reached_them(chat: Chat) -> None:
    chat.say("v001", TEXT)
    chat.say("v002", TEXT)
    assert chat.say("v001", "合并 #1 #2").outcome == "ok"
    r = chat.say("v001", "不满意 #1 还没办")
    assert r.outcome == "refused" and r.reply == "#1 尚未办结。"  # a follower: told the state
    r = chat.say("v003", "不满意 #1 还没办")  # someone else entirely
    assert r.outcome == "refused"
    r = chat.say("v001", "办结 #1 已调解")
    assert "v002" in r.at  # the 回访 reaches the merged reporter
    assert chat.say("v002", "不满意 #1 补偿未到位").outcome == "ok"
    assert chat.issue(1).status == "assigned"


def test_the_permission_check_comes_before_any_status_hint(chat: Chat) -> None:
    chat.say("v001", TEXT)
    chat.say("v001", "办结 #1 已调解")
    for text in ("交办 #1", "退回 #1 请核实", "同意延期 #1", "督办 #1"):
        r = chat.say("t001", text, mentions=("v001",))
        assert r.outcome == "refused" and "重办" not in r.reply and "已办结" not in r.reply, (text, r.reply)
    r = chat.say("t001", "重办 #1 仍有异议")
    assert r.outcome == "refused" and r.reply.startswith("重办需由本村(社区)干部操作")
