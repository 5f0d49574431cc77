"""A console chat for trying the bot without DingTalk: pick a person, type as them, read
the bot's replies and what it sends to other groups."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from sqlmodel import Session, col, select

from bot.app import App
from handlers.incoming import AtUser, Incoming
from models.clock import SystemClock
from models.queries import conversations_of, people_named
from models.tables import OutboxMessage, Person
from models.vocabulary import ROLE_NAMES

BOT_ID = "console-bot"


def run_console(app: App, input_fn: Callable[[str], str] = input, print_fn: Callable[[str], object] = print) -> int:
    directory = app.dispatcher.directory
    with Session(app.engine) as s:
        people = list(s.exec(select(Person).order_by(Person.role, Person.id)))
    for n, p in enumerate(people, 1):
        print_fn(f"{n:>2}. {p.name} ({ROLE_NAMES[p.role]} · {directory.full_name(directory.get(p.unit_id))})")
    print_fn("输入编号选择身份;之后输入消息(@姓名 可@人),「/换人」重新选择,「/退出」结束。")
    person: Person | None = None
    while True:
        try:
            line = input_fn("> " if person is None else f"{person.name}> ").strip()
        except EOFError:
            return 0
        if line in ("/退出", "/quit"):
            return 0
        if person is None or line in ("/换人", "/as"):
            if line.isdigit() and 1 <= int(line) <= len(people):
                person = people[int(line) - 1]
                print_fn(f"现在你是 {person.name}。")
            else:
                person = None
                print_fn("请输入人员编号。")
            continue
        if line:
            _say(app, person, line, print_fn)


def _say(app: App, person: Person, text: str, print_fn: Callable[[str], object]) -> None:
    with Session(app.engine) as s:
        cid = next(iter(conversations_of(s, person.unit_id)), "console-direct")
        mentions = [m for name in re.findall(r"@(\S+)", text) for m in people_named(s, name)]
    msg = Incoming(
        msg_id=f"console-{uuid.uuid4().hex}",
        conversation_id=cid,
        sender_staff_id=person.id,
        sender_nick=person.name,
        text=re.sub(r"@\S+", " ", text),
        create_at=SystemClock().now(),
        at_users=tuple(AtUser(staff_id=p.id) for p in mentions),
        bot_user_id=BOT_ID,
    )
    outcome = app.dispatcher.dispatch(msg)
    print_fn(f"两难助手: {outcome.reply}")
    with Session(app.engine) as s:
        others = s.exec(
            select(OutboxMessage).where(col(OutboxMessage.key).contains(msg.msg_id), OutboxMessage.kind != "reply")
        )
        for out in others:
            where = out.conversation_id or "私聊 " + ",".join(out.user_ids)
            print_fn(f"  → [{where}] {out.text}")
