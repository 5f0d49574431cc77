"""Hostile input through the stream (the real SDK's client against the local gateway) and the
HTTP callback: 100 atUsers, @所有人, 4,001 characters, a foreign robotCode and corpId, an
unknown sender, a 10 MB body. Each gets one answer or a clean refusal, nothing else is held up,
and nothing is stored twice."""

from __future__ import annotations

import json
import time

from sqlmodel import Session, select

from bot.sandbox.emulator import Emulator
from models.tables import InboxMessage
from tests.dingtalk import Rig
from tests.test_http_callback import client as _client
from tests.test_http_callback import count, headers

callback = _client  # the HTTP callback site's fixture, under this module's name
SUBMISSION = "上报 上洋村第{}处道路塌方,影响通行"


async def test_hostile_messages_over_the_stream_each_get_one_answer(rig: Rig) -> None:
    e = rig.emulator
    many = e.user_message(
        "cid-shangyang", "v001", "张三", SUBMISSION.format(1), mentions=[f"x{i:03d}" for i in range(100)]
    )
    everyone = e.user_message("cid-shangyang", "v001", "张三", "@所有人 " + SUBMISSION.format(2))
    everyone["isAtAll"] = True
    foreign = e.user_message("cid-shangyang", "v001", "张三", SUBMISSION.format(3))
    foreign |= {"robotCode": "dingforeignrobot", "chatbotCorpId": "dingforeigncorp", "senderCorpId": "dingforeigncorp"}
    long = e.user_message("cid-shangyang", "v001", "张三", "上报 " + "塌" * 4001)
    stranger = e.user_message("cid-shangyang", "zz999", "陌生人", SUBMISSION.format(5))
    payloads = [many, everyone, foreign, long, stranger]
    for p in payloads:
        await e.deliver(p)
    await e.wait_for(lambda: len(e.sent) == len(payloads), timeout=30)
    await rig.settle()
    assert len(e.sent) == len(payloads)  # one answer each, none doubled
    texts = [s.text for s in e.sent]
    assert sum(t.startswith("已登记") for t in texts) == 3  # 100 mentions, @所有人 and the foreign codes
    assert any("消息过长" in t for t in texts)
    assert rig.count(InboxMessage) == len(payloads)
    assert sum(code == 200 for code in e.acks.values()) == len(payloads)
    assert e.opened == 1  # no frame cost the connection


async def test_a_10_mb_callback_body_is_refused_413_and_its_neighbours_are_stored(callback) -> None:  # type: ignore[no-untyped-def]
    http, app, pipeline = callback
    payload = Emulator().user_message("cid-shangyang", "v001", "张三", "上报 " + "塌" * (10 * 1024 * 1024 // 3))
    huge = json.dumps(payload, ensure_ascii=False).encode()
    assert len(huge) > 10 * 1024 * 1024
    resp = await http.post("/dingtalk/callback", data=huge, headers=headers(int(time.time() * 1000)))
    assert resp.status == 413
    good = json.dumps(
        Emulator().user_message("cid-shangyang", "v001", "张三", SUBMISSION.format(9)), ensure_ascii=False
    )
    resp = await http.post("/dingtalk/callback", data=good.encode(), headers=headers(int(time.time() * 1000)))
    assert resp.status == 200
    await pipeline.drain()
    assert count(app, InboxMessage) == 1


async def test_a_10_mb_frame_gets_the_too_long_line_and_costs_no_connection(rig: Rig) -> None:
    e = rig.emulator
    await e.deliver(e.user_message("cid-shangyang", "v001", "张三", "上报 " + "塌" * (10 * 1024 * 1024 // 3)))
    await e.deliver(e.user_message("cid-shangyang", "v001", "张三", SUBMISSION.format(1)))
    await e.wait_for(lambda: len(e.sent) == 2, timeout=30)
    await rig.settle()
    assert sorted(s.text[:3] for s in e.sent) == ["已登记", "消息过"]
    assert e.opened == 1 and rig.count(InboxMessage) == 2
    with Session(rig.app.engine) as s:  # what is kept of it is bounded, not 10 MB
        assert max(len(json.dumps(p)) for p in s.exec(select(InboxMessage.payload)).all()) < 100_000
