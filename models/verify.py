"""Walk every issue's hash chain: report edited, inserted or missing events, and a projection
that its events do not explain."""

from __future__ import annotations

from itertools import groupby

from sqlmodel import Session, col, select

from models.lifecycle import event_hash, replay
from models.tables import Issue, IssueEvent

CHECKED_FIELDS = ("level", "status", "unit_id", "owner_id", "deadline", "duplicate_of")


def verify_chains(session: Session) -> list[str]:
    problems: list[str] = []
    issues = {i.id: i for i in session.exec(select(Issue)).all() if i.id is not None}  # stored: all have one
    events = session.exec(select(IssueEvent).order_by(col(IssueEvent.issue_id), col(IssueEvent.seq))).all()
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
    for issue_id in sorted(set(issues) - seen):
        problems.append(f"#{issue_id}: 没有任何事件(事件被删除)")
    return problems
