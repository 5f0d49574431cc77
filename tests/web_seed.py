"""Ten weeks of realistic traffic through the real dispatcher, for the dashboard and API
tests: submissions with phone and ID numbers in six villages of five townships, village
resolutions, township reviews and assignments (some left overdue), district 交办 on 周二无会日
and on an ordinary day, feedback with a picture, and 办结 by the owner."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from handlers.incoming import AtUser, Incoming
from models.clock import SHANGHAI
from tests.conftest import BOT_ID, Chat

START = date(2020, 3, 2)  # a Monday
WEEKS = 10
NOW = datetime(2020, 5, 13, 12, 0, tzinfo=SHANGHAI)  # a Wednesday, when the tests look
VILLAGERS = ("v001", "v003", "v004", "v005", "v006", "v007")
ID_NUMBER = "11010519491231002X"
TEXTS = (
    "村民反映宅基地审批拖了{n}个月仍未批复,扬言要申请行政复议,联系电话138{n:08d}",
    "有企业拖欠{n}名工人工资,工人情绪激动,联系人电话139{n:08d}",
    "村道塌方{n}米影响通行,雨季前需尽快修复",
    "邻里因排水沟纠纷多次争吵,一方已有起诉意向,身份证号" + ID_NUMBER,
    "征迁补偿款第{n}户迟迟未到位,户主多次到村委会反映",
    "低保申请被退回,当事人对复核结果不服,电话0570-30{n:05d}",
)


@dataclass(order=True)
class Act:
    at: datetime
    order: int
    who: str = field(compare=False)
    text: str = field(compare=False)  # "{id}" stands for the number of the issue `key`
    key: str = field(compare=False)
    mentions: tuple[str, ...] = field(compare=False, default=())
    pictures: tuple[str, ...] = field(compare=False, default=())


@dataclass
class Seeded:
    ids: dict[str, int]
    now: datetime = NOW

    def of(self, key: str) -> int:
        return self.ids[key]


def _at(d: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(d, time(hour, minute), tzinfo=SHANGHAI)


def script() -> list[Act]:
    serial = itertools.count()
    acts: list[Act] = []

    def act(at: datetime, who: str, text: str, key: str, **kw: tuple[str, ...]) -> None:
        acts.append(Act(at, next(serial), who, text, key, **kw))

    for w in range(WEEKS):
        monday = START + timedelta(weeks=w)
        for j, who in enumerate(VILLAGERS):
            key, day = f"w{w}v{j}", monday + timedelta(days=j % 5)
            act(_at(day, 9, 30), who, "上报 " + TEXTS[(w + j) % len(TEXTS)].format(n=w * 10 + j + 1), key)
            if j in (1, 3, 5) and w % 2 == 0:  # settled in the village
                act(_at(day + timedelta(days=2), 16), who, "办结 #{id} 已调解,双方签字", key)
            elif j == 0:  # 上洋村 → 花园街道, assigned with a deadline; the late weeks' stay open
                act(_at(day + timedelta(days=1), 9), who, "上报 #{id} 村里协调不了", key)
                act(_at(day + timedelta(days=1), 11), "t101", "研判 #{id} 情况属实,需街道协调 风险:中", key)
                act(_at(day + timedelta(days=1), 14), "t101", "交办 #{id} 限3天", key, mentions=("t001",))
                if w < 6:
                    act(_at(day + timedelta(days=3), 17), "t001", "办结 #{id} 已协调到位", key)
            elif j == 2 and w % 3 == 0:  # 航埠镇/新村 → 航埠镇 → 区
                act(_at(day + timedelta(days=1), 9), who, "上报 #{id} 需镇里出面", key)
                act(_at(day + timedelta(days=1), 10), "t102", "研判 #{id} 涉及历史遗留,需区里认定 风险:高", key)
                act(_at(day + timedelta(days=2), 9), "t102", "上报 #{id} 请区里协调", key)
                tuesday = monday + timedelta(days=8)
                when = _at(tuesday + timedelta(days=1 if w == 3 else 0), 10)  # week 3: an ordinary day
                tag = "" if w == 3 else " 周二无会日"
                act(when, "d001", "交办 #{id} 区自然资源局 限5天" + tag, key, mentions=("p001",))
                act(when + timedelta(days=1), "p001", "反馈 #{id} 已到现场踏勘,联系人13712345678", key)
                act(when + timedelta(days=1, minutes=2), "p001", "", key, pictures=(f"dl-code-{w}-a", f"dl-code-{w}-b"))
                if w < 9:
                    act(when + timedelta(days=3), "p001", "化解 #{id} 已补办手续,当事人满意", key)
            elif j == 4 and w % 2 == 1:  # 沟溪乡 has no lead: reviewed, then waits
                act(_at(day + timedelta(days=1), 9), who, "上报 #{id}", key)
                act(_at(day + timedelta(days=1), 15), "t003", "研判 #{id} 需乡里统筹 风险:低", key)
    return sorted(a for a in acts if a.at < NOW)


def seed(chat: Chat) -> Seeded:
    with chat.batched():  # replies are sent a hundred at a time
        return _seed(chat)


def _seed(chat: Chat) -> Seeded:
    ids: dict[str, int] = {}
    for a in script():
        text = a.text.format(id=ids.get(a.key, 0))
        if a.pictures:
            chat.at = chat.clock.at = a.at
            msg = Incoming(
                msg_id=f"pic-{a.order}",
                conversation_id=chat.group_of(a.who),
                sender_staff_id=a.who,
                sender_nick=a.who,
                text="",
                create_at=a.at,
                at_users=(AtUser(dingtalk_id=BOT_ID),),
                bot_user_id=BOT_ID,
                msgtype="picture",
                pictures=a.pictures,
            )
            r = chat.send(msg)
        else:
            r = chat.say(a.who, text, at=a.at, mentions=a.mentions)
        assert r.outcome == "ok", (a, r.reply)
        if a.key not in ids:
            assert r.issue_id
            ids[a.key] = r.issue_id
    chat.at = chat.clock.at = NOW
    return Seeded(ids)
