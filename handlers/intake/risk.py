"""The 行政败诉风险 flag: a party threatens or has begun a suit, reconsideration or petition
AGAINST THE GOVERNMENT (行政诉讼, 行政复议, 告政府/镇里/街道, 上访 over a decision) — unless the post
says there is none or it was withdrawn. Three answers (models/rules.py Litigation):
  是   — clearly against a government body or its act;
  疑似 — a suit/arbitration/petition is threatened and it is unclear against whom, or a private
         dispute where a government act is also in dispute;
  否   — none, withdrawn, or between private parties (劳动仲裁 against a company, a neighbour's 起诉).
Read clause by clause, in order, so "已撤诉,但仍扬言上访" ends as a risk."""

from __future__ import annotations

import re

from models.vocabulary import Litigation

# 告 as "to sue", not the 告 of 报告, 转告, 通告, 公告, 广告, 预告, 警告, 劝告, 忠告, 告知, 告诉.
_SUE = r"(?:(?<![报转通公广预警劝忠宣])告(?![知诉])|起诉|状告)"
# A government body named by its office: 执法局, 资规局, 城管, 派出所.
_BUREAU = r"(?:[\u4e00-\u9fff]{0,4}?局|执法大队|综合执法|城管|派出所)"
# Against the government by its very form: administrative litigation/reconsideration, petitioning
# (信访 is addressed to the government), or taking a complaint above the township.
_AGAINST_GOVERNMENT = re.compile(
    r"行政诉讼|行政复议|申请复议|复议|民告官"
    r"|行政败诉|上访|信访|闹访|缠访|集访|群访|越级|进京|赴京|赴省|(?:去|到|上)北京"
    r"|(?:到|去)(?:市里|省里|北京|市政府|省政府)(?:去)?(?:反映|讨说法|告|闹|上访)"
    r"|(?:到|去)(?:区里|镇里|乡里|县里|街道|区政府|镇政府|乡政府)(?:[、和]?(?:区里|市里|省里))*(?:去)?(?:告|闹|讨说法)"
    rf"|{_SUE}(?:区里|镇里|乡里|县里|街道|区政府|镇政府|乡政府|街道办|政府|{_BUREAU})"
)
# Against the village committee: a self-governing body, not the government, unless what is
# contested is a government act it carried out (征地补偿, 低保); else 疑似.
_AGAINST_VILLAGE = re.compile(rf"{_SUE}(?:村委会?|村里|村干部|村支书|村书记|村主任|村两委|居委会?|社区)")
# A suit or threat whose target the form does not say: a court case, arbitration, a lawyer, a sit-in.
_UNDIRECTED = re.compile(
    r"起诉|诉讼|打官司|吃官司|败诉|告到法院|告上法庭|告到法庭|到法院告|去法院告|向法院|上法院"
    r"|法律途径|法律程序|司法途径|找律师|请律师|律师函|仲裁|拉横幅|静坐"
)
# A government body or act in dispute somewhere in the post: the target of an undirected threat.
_GOVERNMENT_ACT = re.compile(
    r"政府|镇里|乡里|街道办|区里|县里|行政|征收|征地|拆迁|强拆|处罚|罚款|执法|城管|不作为|审批|确权"
    r"|补偿标准|补偿决定|安置|低保|退役|社保局|人社局|住建|国土|自然资源|公安|派出所"
)
# A government decision the party contests: against the government even where a company or a
# relative also appears (the 厂房 an order to rectify is about is no private opponent).
_GOVERNMENT_DECISION = re.compile(r"责令|整改通知|处罚决定|行政处罚|征收决定|强拆|拆除|限期拆")
# The other side is a private party: a company, an employer, a neighbour or a relative.
_PRIVATE_PARTY = re.compile(
    r"劳动仲裁|劳动争议|劳资|民事|邻居|邻里|亲戚|兄弟|姐妹|父母|儿子|女儿|儿媳|家人|家属|前夫|前妻|丈夫|妻子"
    r"|公司|老板|厂|企业|包工头|工头|开发商|物业|商家|店主|承包|对方|用人单位|雇主|欠款|借款|工资|工钱|薪"
)
# A negation close before the keyword in the same clause: 暂无上访风险, 不存在诉讼可能, 未提起诉讼.
# 无果/未果/无奈/未能 are not negations of what follows.
_NEGATION = re.compile(
    r"(?:无(?![果奈法])|没有|没(?![收])|不存在|不会|不再|不打算|不想|不准备|(?<!不)(?<!不能)(?<!无法)排除|否认"
    r"|未(?![果能经])|并非|尚无|均无|暂无|暂未)"
    r"[^,;。!?\n]{0,5}$"
)
# The risk is over: withdrawn, settled, the petitioner gave up (说不去了, 不告了, 放弃上访).
_WITHDRAWN = re.compile(
    r"撤诉|撤回(?:行政)?(?:起诉|复议|诉讼|申请)|已撤回|息诉罢访|息访|罢访|撤案|已和解|撤销(?:行政)?(?:复议|起诉)申请"
    r"|(?:过了|已过|超过)诉讼时效|不(?:去|告|闹|访|上访|信访|起诉|打官司)了|放弃(?:上访|信访|起诉|诉讼|复议|仲裁)"
)
# A withdrawal that did not happen keeps the suit live: 未撤回复议申请, 拒不撤诉.
_NOT_WITHDRAWN = re.compile(r"(?:尚未|并未|未|没有?|拒不|不肯|不愿|不同意)(撤诉|撤回|撤销)")
_CLAUSE = re.compile(r"[,;。!?\n,;]")


def _live(pattern: re.Pattern[str], clause: str) -> bool:
    """The pattern occurs in the clause, not negated."""
    return any(not _NEGATION.search(clause, 0, m.start()) for m in pattern.finditer(clause))


def _undirected(text: str) -> Litigation:
    """Whom an undirected threat is against, read from the whole post."""
    if _GOVERNMENT_DECISION.search(text):
        return Litigation.YES
    government, private = bool(_GOVERNMENT_ACT.search(text)), bool(_PRIVATE_PARTY.search(text))
    if private:
        return Litigation.SUSPECTED if government else Litigation.NO
    return Litigation.YES if government else Litigation.SUSPECTED


def _against_village(text: str) -> Litigation:
    if _GOVERNMENT_DECISION.search(text) or _GOVERNMENT_ACT.search(text):
        return Litigation.YES
    return Litigation.SUSPECTED


def _unwithdrawn(m: re.Match[str]) -> str:
    """A negated withdrawal reads as the suit going on (its keyword kept for the patterns)."""
    return "坚持诉讼" if m.group(1) == "撤诉" else "坚持"


def litigation_kind(text: str) -> Litigation:
    kind = Litigation.NO
    for clause in _CLAUSE.split(text):
        clause = _NOT_WITHDRAWN.sub(_unwithdrawn, clause)
        if _WITHDRAWN.search(clause):
            kind = Litigation.NO
            continue
        if _live(_AGAINST_GOVERNMENT, clause):
            found = Litigation.YES
        elif _live(_AGAINST_VILLAGE, clause):
            found = _against_village(text)
        elif _live(_UNDIRECTED, clause):
            found = _undirected(text)
        else:
            continue
        kind = max(kind, found, key=Litigation.rank)
    return kind


def litigation_risk(text: str) -> bool:
    """是: the yes/no the corpora and the `litigation_risk` column hold."""
    return litigation_kind(text) is Litigation.YES


_STATED = re.compile(r"行政败诉风险|败诉风险")


def stated_litigation(text: str) -> bool | None:
    """What a 研判 says of 行政败诉风险 in so many words: True (有…风险), False (无/不存在/排除…),
    None when it does not say."""
    if not _STATED.search(text):
        return None
    return any(_live(_STATED, clause) for clause in _CLAUSE.split(text))
