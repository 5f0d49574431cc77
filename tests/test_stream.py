"""The bot's real SDK-based stream client against the local DingTalk emulator, end to end."""

from __future__ import annotations

import asyncio
import json

from bot.app import build
from models.tables import InboxMessage, Issue
from tests.databases import database_url
from tests.dingtalk import Rig, settings, start_runtime

SUBMISSION = "上报 上洋村村民反映宅基地审批8个月未批复,联系电话13812345678"


async def test_submission_gets_its_receipt_through_the_session_webhook(rig: Rig) -> None:
    await rig.emulator.deliver(rig.payload(SUBMISSION))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    sent = rig.emulator.sent[0]
    assert sent.channel == "session" and sent.conversation_id == "cid-shangyang"
    # On the wire as DingTalk markdown: the masked digits' stars escaped, never emphasis.
    assert sent.text.startswith("已登记 #1【花园街道·上洋村】") and "138\\*\\*\\*\\*5678" in sent.text
    assert "13812345678" not in json.dumps(rig.emulator.sent[0].__dict__, ensure_ascii=False)
    assert list(rig.emulator.acks.values()) == [200]


async def test_escalation_mentions_by_staff_id_and_notifies_the_upper_group(rig: Rig) -> None:
    await rig.emulator.deliver(rig.payload(SUBMISSION))
    await rig.emulator.deliver(rig.payload("上报 #1 需要街道协调"))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 4)
    reply = next(s for s in rig.emulator.sent if s.text.startswith("#1 已上报"))
    # 王五 is not in the village group: no @ there (one would ping nobody), his name plain.
    assert reply.at_user_ids == [] and "@" not in reply.text and "王五 请研判" in reply.text
    group = next(s for s in rig.emulator.sent if s.channel == "group")
    assert group.conversation_id == "cid-huayuan" and group.text.startswith("新上报 #1")
    assert "@" not in group.text  # the OpenAPI cannot @: he is told one to one instead
    direct = next(s for s in rig.emulator.sent if s.channel == "user")
    assert direct.user_ids == ["t101"] and direct.text == group.text


async def test_redelivered_msg_id_gives_one_issue_and_one_receipt(rig: Rig) -> None:
    payload = rig.payload(SUBMISSION)
    await rig.emulator.deliver(payload)
    await rig.emulator.deliver(payload)
    await rig.emulator.wait_for(lambda: len(rig.emulator.acks) == 2)
    await rig.settle()
    assert rig.count(Issue) == 1 and len(rig.emulator.sent) == 1


async def test_socket_dropped_mid_burst_of_500_loses_nothing(rig: Rig) -> None:
    payloads = [rig.payload(f"上报 上洋村第{i}号道路塌方,影响通行") for i in range(500)]
    for i, p in enumerate(payloads):
        await rig.emulator.deliver(p)
        if i == 250:
            await rig.emulator.drop_all()
    await rig.emulator.wait_for(lambda: len({s.text.split("【")[0] for s in rig.emulator.sent}) == 500, timeout=60)
    await rig.runtime.pipeline.drain()  # type: ignore[union-attr]
    assert rig.count(Issue) == 500 and rig.count(InboxMessage) == 500
    assert rig.emulator.opened >= 2
    receipts = [s.text.split("【")[0] for s in rig.emulator.sent]
    assert len(receipts) == len(set(receipts)) == 500  # no reply twice


async def test_disconnect_frame_moves_to_a_new_connection_without_loss(rig: Rig) -> None:
    for i in range(100):
        await rig.emulator.deliver(rig.payload(f"上报 上洋村第{i}号排水沟堵塞,影响通行"))
        if i == 40:
            await rig.emulator.disconnect_all(close_after_s=0.3)
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 100, timeout=30)
    assert rig.emulator.opened == 2 and rig.count(Issue) == 100


async def test_expired_session_webhook_falls_back_to_the_openapi(rig: Rig) -> None:
    rig.emulator.faults.session_expired = True
    await rig.emulator.deliver(rig.payload(SUBMISSION))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.sent[0].channel == "group" and rig.emulator.sent[0].conversation_id == "cid-shangyang"
    await rig.settle()
    assert [o.channel for o in rig.outbox()] == ["openapi"]


async def test_a_webhook_expiring_soon_is_not_used(rig: Rig) -> None:
    await rig.emulator.deliver(rig.payload(SUBMISSION, webhook_ttl_s=5))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.sent[0].channel == "group"


async def test_one_to_one_reply_falls_back_to_batch_send(rig: Rig) -> None:
    rig.emulator.faults.session_expired = True
    await rig.emulator.deliver(rig.payload("帮助", conversation_type="1", cid="cid-private-v001"))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert (rig.emulator.sent[0].channel, rig.emulator.sent[0].user_ids) == ("user", ["v001"])


async def test_5xx_then_success_sends_one_reply(rig: Rig) -> None:
    rig.emulator.faults.fail_next["/robot/sendBySession"] = 2
    await rig.emulator.deliver(rig.payload(SUBMISSION))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1, timeout=30)
    await rig.settle()
    (row,) = rig.outbox()
    assert (row.status, row.attempts, row.channel) == ("sent", 3, "session")
    assert len(rig.emulator.sent) == 1


async def test_sender_without_staff_id_is_known_by_union_id(rig: Rig) -> None:
    rig.emulator.faults.omit_staff_id = True
    await rig.emulator.deliver(rig.payload(SUBMISSION))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.sent[0].text.startswith("已登记 #1") and rig.issues()[0].reporter_id == "v001"


async def test_audio_gets_a_polite_line(rig: Rig) -> None:
    await rig.emulator.deliver(rig.payload("", msgtype="audio", content={"duration": 3, "downloadCode": "x"}))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.sent[0].text == "暂只支持文字消息,请用文字描述。" and rig.count(Issue) == 0


async def test_a_voice_message_is_read_by_its_transcript(rig: Rig) -> None:
    content = {"duration": 9, "downloadCode": "x", "recognition": "上报 " + SUBMISSION}
    await rig.emulator.deliver(rig.payload("", msgtype="audio", content=content))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.sent[0].text.startswith("已登记 #1") and rig.count(Issue) == 1
    blank = {"duration": 2, "downloadCode": "y", "recognition": "  "}
    await rig.emulator.deliver(rig.payload("", msgtype="audio", content=blank))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 2)
    assert rig.emulator.sent[1].text == "暂只支持文字消息,请用文字描述。" and rig.count(Issue) == 1


async def test_malformed_frames_are_rejected_and_the_connection_lives_on(rig: Rig) -> None:
    conn = next(iter(rig.emulator.connections.values()))
    await conn.ws.send_str("not json at all")
    await conn.ws.send_str(json.dumps([1, 2, 3]))
    bad = {
        "specVersion": "1.0",
        "type": "CALLBACK",
        "headers": {"topic": "/v1.0/im/bot/messages/get", "messageId": "bad-1", "contentType": "application/json"},
        "data": json.dumps({"text": {"content": "no ids"}}),
    }
    await conn.ws.send_str(json.dumps(bad))
    await rig.emulator.wait_for(lambda: rig.emulator.acks.get("bad-1") == 400)
    await rig.emulator.deliver(rig.payload(SUBMISSION))
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.opened == 1 and rig.count(InboxMessage) == 1


async def test_ping_is_answered_with_its_data(rig: Rig) -> None:
    await rig.emulator.ping_all()
    await rig.emulator.wait_for(lambda: any(k.startswith("ping-") for k in rig.emulator.acks))


async def test_watchdog_replaces_a_connection_that_stopped_answering(tmp_path, emulator_server) -> None:  # type: ignore[no-untyped-def]
    emulator, server = emulator_server
    emulator.faults.autoping = False  # the server side hangs: pings go unanswered
    app = build(settings(tmp_path))
    runtime = await start_runtime(app, server, heartbeat_s=0.2)
    try:
        await emulator.wait_for(lambda: emulator.opened >= 2, timeout=10)
        emulator.faults.autoping = True
        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", SUBMISSION))
        await emulator.wait_for(lambda: len(emulator.sent) == 1, timeout=10)
    finally:
        await runtime.stop()
        app.engine.dispose()


async def test_clean_stop_mid_burst_then_restart_loses_nothing_and_repeats_nothing(tmp_path, emulator_server) -> None:  # type: ignore[no-untyped-def]
    emulator, server = emulator_server
    emulator.faults.redeliver_after_s = 0.5
    app = build(settings(tmp_path))
    runtime = await start_runtime(app, server)
    await emulator.wait_for(lambda: len(emulator.connections) == 1)
    for i in range(200):
        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", f"上报 上洋村第{i}号路灯不亮"))
        if i == 100:
            stopping = asyncio.create_task(runtime.stop())
    await stopping
    second = await start_runtime(app, server)
    try:
        await emulator.wait_for(lambda: len({s.text.split("【")[0] for s in emulator.sent}) == 200, timeout=30)
        await second.pipeline.drain()  # type: ignore[union-attr]
        with_ids = [s.text.split("【")[0] for s in emulator.sent]
        assert len(with_ids) == 200 and len(set(with_ids)) == 200
    finally:
        await second.stop()
        app.engine.dispose()


async def test_sigterm_mid_burst_then_restart_loses_nothing_and_repeats_nothing(tmp_path, emulator_server) -> None:  # type: ignore[no-untyped-def]
    """The real `liandong run` process, stopped by SIGTERM while a burst arrives."""
    import os
    import signal
    import sys

    emulator, _server = emulator_server
    emulator.faults.redeliver_after_s = 1.0
    env = {
        **os.environ,
        "DATABASE_URL": database_url(tmp_path, "bot"),
        "DINGTALK_CLIENT_ID": "sandbox-id",
        "DINGTALK_CLIENT_SECRET": "sandbox-secret",
        "DINGTALK_ROBOT_CODE": "dingsandboxrobot",
        "DINGTALK_OPENAPI_ENDPOINT": emulator.base_url,
    }

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--no-web",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=open(tmp_path / "bot.log", "ab"),
        )

    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "migrate", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    assert await asyncio.wait_for(migrate.wait(), 60) == 0  # the deploy step: `run` never migrates
    proc = await start()
    await emulator.wait_for(lambda: len(emulator.connections) == 1, timeout=30)
    for i in range(300):
        await emulator.deliver(emulator.user_message("cid-shangyang", "v001", "张三", f"上报 上洋村第{i}号井盖缺失"))
        if i == 150:
            proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    await emulator.wait_for(lambda: not emulator.connections, timeout=30)
    proc = await start()
    try:
        # The first process may have answered all 300 itself; the stop below must still find a
        # running bot, not one still importing (which would die by the signal's default action).
        await emulator.wait_for(lambda: len(emulator.connections) == 1, timeout=30)
        await emulator.wait_for(lambda: len({s.text.split("【")[0] for s in emulator.sent}) == 300, timeout=60)
        texts = [s.text.split("【")[0] for s in emulator.sent]
        assert len(texts) == 300  # each of the 300 answered exactly once
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_stop_while_the_connection_is_opening_does_not_hang(tmp_path, emulator_server) -> None:  # type: ignore[no-untyped-def]
    emulator, server = emulator_server
    emulator.faults.slow_s = 0.3  # the gateway answers late: stop() arrives mid-connect
    app = build(settings(tmp_path))
    runtime = await start_runtime(app, server)
    await asyncio.wait_for(runtime.stop(), timeout=10)
    await emulator.wait_for(lambda: not emulator.connections, timeout=10)
    app.engine.dispose()


async def test_a_poisoned_or_nested_frame_is_acked_as_bad_and_its_neighbours_are_stored(rig: Rig) -> None:
    conn = next(iter(rig.emulator.connections.values()))

    def frame(message_id: str, data: str) -> str:
        headers = {"topic": "/v1.0/im/bot/messages/get", "messageId": message_id, "contentType": "application/json"}
        return json.dumps({"specVersion": "1.0", "type": "CALLBACK", "headers": headers, "data": data})

    poisoned = rig.payload(SUBMISSION, msg_id="\ud800")
    await conn.ws.send_str(frame("poison-1", json.dumps(poisoned)))
    await conn.ws.send_str(frame("nested-1", "[" * 100_000 + "]" * 100_000))
    await conn.ws.send_str("[" * 100_000 + "]" * 100_000)  # a whole frame too deep to parse
    for i in range(5):
        await rig.emulator.deliver(rig.payload(f"上报 上洋村第{i}处道路塌方,影响通行"))
    await rig.emulator.wait_for(lambda: rig.emulator.acks.get("poison-1") == 400)
    await rig.emulator.wait_for(lambda: rig.emulator.acks.get("nested-1") == 400)
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 5)
    assert rig.emulator.opened == 1 and rig.count(InboxMessage) == 5


async def test_backoff_starts_over_after_a_connection_that_worked(rig: Rig) -> None:
    stream = rig.runtime.stream
    assert stream is not None
    for round_ in range(5):
        opened = rig.emulator.opened
        for i in range(10):
            await rig.emulator.deliver(rig.payload(f"上报 上洋村第{round_}-{i}号道路塌方,影响通行"))
        await rig.emulator.wait_for(lambda r=round_: len(rig.emulator.sent) == 10 * (r + 1), timeout=30)
        await rig.emulator.drop_all()
        await rig.emulator.wait_for(lambda o=opened: rig.emulator.opened > o, timeout=30)
    assert stream.backoff_attempts == [1, 1, 1, 1, 1]  # never growing: each connection had worked


async def test_a_reply_never_goes_to_a_session_webhook_on_a_foreign_host(rig: Rig) -> None:
    payload = rig.payload(SUBMISSION)
    payload["sessionWebhook"] = "http://127.0.0.2:9/robot/sendBySession?session=forged"  # not DingTalk's
    await rig.emulator.deliver(payload)
    await rig.emulator.wait_for(lambda: len(rig.emulator.sent) == 1)
    assert rig.emulator.sent[0].channel == "group" and rig.emulator.sent[0].text.startswith("已登记 #1")
