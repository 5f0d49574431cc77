"""Walk every issue's hash chain: report edited, inserted or missing events, a projection that
its events do not explain, and kept counts (models.facts) that differ from a rebuild from the
events."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby
from typing import Any

from sqlmodel import Session, col, select

from models.facts import F, Fact, comparable, facts_of
from models.lifecycle import event_hash, replay
from models.tables import Issue, IssueEvent

CHECKED_FIELDS = ("level", "status", "unit_id", "owner_id", "deadline", "duplicate_of", "resolved_days")
FACT_NAMES = {
    Fact.VILLAGE_ENTERED: "村级排摸",
    Fact.TOWNSHIP_ENTERED: "乡镇提交",
    Fact.DISTRICT_ASSIGNED: "区级交办",
    Fact.VILLAGE_RESOLVED: "村级办结",
    Fact.TOWNSHIP_RESOLVED: "乡镇办结",
    Fact.DISTRICT_RESOLVED: "区级化解",
}


def verify_chains(session: Session) -> list[str]:
    problems: list[str] = []
    issues = {i.id: i for i in session.exec(select(Issue)).all() if i.id is not None}  # stored: all have one
    events = session.exec(select(IssueEvent).order_by(col(IssueEvent.issue_id), col(IssueEvent.seq))).all()
    kept: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in session.connection().execute(F.select()).mappings():
        kept[row["issue_id"]].append(dict(row))
    seen: set[int] = set()
    for issue_id, group in groupby(events, key=lambda e: e.issue_id):
        chain = list(group)
        seen.add(issue_id)
        issue = issues.get(issue_id)
        if issue is None:
            problems.append(f"#{issue_id}: 有事件但问题不存在")
            continue
        prev = ""
        for expected_seq, ev in enumerate(chain, start=1):
            if ev.seq != expected_seq:
                problems.append(f"#{issue_id}: 第{expected_seq}条事件缺失或多出(见到序号 {ev.seq})")
                break
            if ev.prev_hash != prev:
                problems.append(f"#{issue_id}: 第{ev.seq}条事件的前序哈希不符(事件被插入或删除)")
                break
            if event_hash(ev) != ev.hash:
                problems.append(f"#{issue_id}: 第{ev.seq}条事件被修改")
                break
            prev = ev.hash
        else:
            if len(chain) != issue.event_count or prev != issue.head_hash:
                problems.append(f"#{issue_id}: 事件数 {len(chain)} 与记录 {issue.event_count} 不符(末尾事件缺失)")
            else:
                rebuilt = replay(chain)
                diff = [f for f in CHECKED_FIELDS if getattr(rebuilt, f) != getattr(issue, f)]
                if diff:
                    problems.append(f"#{issue_id}: 当前状态与事件不符({', '.join(diff)})")
                if drift := count_drift(kept.pop(issue_id, []), facts_of(issue, chain)):
                    problems.append(f"#{issue_id}: 统计数据与事件不符({drift})")
    for issue_id in sorted(set(issues) - seen):
        problems.append(f"#{issue_id}: 没有任何事件(事件被删除)")
    for issue_id in sorted(set(kept) - set(issues)):
        problems.append(f"#{issue_id}: 问题不存在却有统计数据")
    return problems


def count_drift(kept: list[dict[str, Any]], rebuilt: list[dict[str, Any]]) -> str:
    """Which counts of an issue its kept rows get wrong, in Chinese; empty when they agree."""
    have, want = comparable(kept), comparable(rebuilt)
    if have == want:
        return ""
    wrong = {r[0] for r in set(have) ^ set(want)} or {r[0] for r in have + want}
    order = {k: n for n, k in enumerate(FACT_NAMES)}
    return "、".join(FACT_NAMES.get(k, k) for k in sorted(wrong, key=lambda k: (order.get(k, len(order)), k)))
