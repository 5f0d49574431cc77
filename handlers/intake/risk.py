"""The litigation-risk flag: a party threatens or has begun a lawsuit, administrative
reconsideration, arbitration or petitioning (信访) — unless the post says there is none or it
was withdrawn. Read clause by clause, in order, so "已撤诉,但仍扬言上访" ends as a risk."""

from __future__ import annotations

import re

_RISK = re.compile(
    r"行政诉讼|行政复议|申请复议|复议|起诉|诉讼|打官司|吃官司|败诉|上访|信访|闹访|缠访|集访|群访|越级|进京|赴京|赴省"
    r"|告到法院|告上法庭|告到法庭|到法院告|去法院告|向法院|上法院|法律途径|法律程序|司法途径|找律师|请律师|律师函|仲裁"
    r"|拉横幅|静坐"
    # Going above the township with a complaint is petitioning; going to the township or the
    # district is only when it is to sue, make a scene or sit in (去镇里反映 is ordinary).
    r"|(?:到|去)(?:市里|省里|北京|市政府|省政府)(?:去)?(?:反映|讨说法|告|闹|上访)"
    r"|(?:到|去)(?:区里|镇里|乡里|县里|街道|区政府|镇政府|乡政府)(?:[、和]?(?:区里|市里|省里))*(?:去)?(?:告|闹|讨说法)"
)
# A negation close before the keyword in the same clause: 暂无上访风险, 不存在诉讼可能, 未提起诉讼.
# 无果/未果/无奈/未能 are not negations of what follows.
_NEGATION = re.compile(
    r"(?:无(?![果奈法])|没有|没(?![收])|不存在|不会|不再|不打算|不想|不准备|排除|否认|未(?![果能经])|并非|尚无|均无|暂无|暂未)"
    r"[^,;。!?\n]{0,5}$"
)
# The risk is over: withdrawn, settled, the petitioner gave up.
_WITHDRAWN = re.compile(
    r"撤诉|撤回(?:行政)?(?:起诉|复议|诉讼|申请)|息诉罢访|息访|罢访|撤案|已和解|撤销(?:行政)?(?:复议|起诉)申请"
    r"|(?:过了|已过|超过)诉讼时效"
)
_CLAUSE = re.compile(r"[,;。!?\n,;]")


def litigation_risk(text: str) -> bool:
    risk = False
    for clause in _CLAUSE.split(text):
        if _WITHDRAWN.search(clause):
            risk = False
            continue
        for m in _RISK.finditer(clause):
            if not _NEGATION.search(clause, 0, m.start()):
                risk = True
                break
    return risk
