"""Verb → handler, spelled out in one table (no registration by import side effect)."""

from __future__ import annotations

from collections.abc import Callable

from handlers import admin_commands as admin
from handlers import corrections
from handlers import info_commands as info
from handlers import issue_commands as issues
from handlers.context import Context
from handlers.replies import Result

Handler = Callable[[Context], Result]

HANDLERS: dict[str, Handler] = {
    "上报": issues.submit_or_escalate,
    "研判": issues.review,
    "交办": issues.assign,
    "反馈": issues.feedback,
    "办结": issues.resolve,
    "退回": issues.return_down,
    "重办": issues.reopen,
    "延期": issues.extend,
    "同意延期": issues.approve_extension,
    "合并": issues.merge,
    "不满意": issues.dissatisfied,
    "督办": issues.supervise,
    "查": info.show,
    "列表": info.list_,
    "统计": info.stats,
    "帮助": info.help_,
    "绑定": admin.bind,
    "角色": admin.set_role,
    "改": corrections.amend,
}
