"""The page shell and the small HTML helpers. Every value reaches HTML through `h`."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from models.directory import UnitInfo

CSS_PATH = Path(__file__).parent / "static" / "dashboard.css"
CSS_URL = "/dashboard/static/dashboard.css"
LOGOUT_PATH = "/dashboard/logout"


def h(value: Any) -> str:
    return "—" if value is None or value == "" else escape(str(value))


def attr(value: Any) -> str:
    """For an attribute value, where an empty one must stay empty."""
    return "" if value is None else escape(str(value))


def link(path: str, params: Mapping[str, Any] | None = None) -> str:
    query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
    return escape(f"{path}?{query}" if query else path)


BIG = {"big": "1"}  # ?big=1: large text for a projector, kept in every link of the page


def is_big(query: Mapping[str, str]) -> bool:
    return query.get("big") == "1"


def mode(big: bool) -> dict[str, str]:
    """The query a link adds to stay in the mode it was followed from."""
    return dict(BIG) if big else {}


def page(
    title: str,
    body: str,
    scope: UnitInfo | None = None,
    updated: str = "",
    big: bool = False,
    toggle: str = "",
) -> str:
    """`toggle`: the address of this page in the other text size (a link in the header)."""
    where = f'<span class="scope">{h(scope.name)} · 只读</span>' if scope else ""
    home, listed = link("/dashboard", mode(big)), link("/dashboard/issues", mode(big))
    nav = f'<a href="{home}">总览</a><a href="{listed}">问题列表</a>' if scope else ""
    if toggle:
        nav += f'<a class="bigmode" href="{toggle}">{"普通字号" if big else "大字模式(投影)"}</a>'
    if scope:  # a POST (a link could be followed by a prefetcher); the page's CSP allows forms to 'self'
        nav += (
            f'<form class="logout" method="post" action="{LOGOUT_PATH}"><button type="submit">退出登录</button></form>'
        )
    foot = f"数据截至 {h(updated[:16].replace('T', ' '))} · " if updated else ""
    return f"""<!doctype html>
<html lang="zh-CN"{' class="big"' if big else ""}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{h(title)} · 两难问题看板</title>
<link rel="stylesheet" href="{CSS_URL}">
</head>
<body>
<header class="top"><h1>"两难"问题三级联动看板</h1>{where}{nav}</header>
<main>
{body}
</main>
<footer>{foot}三级联动解决"两难"问题 · 手机号、身份证号已隐藏</footer>
</body>
</html>
"""


def message_page(title: str, message: str, scope: UnitInfo | None = None) -> str:
    return page(title, f'<section class="card"><h2>{h(title)}</h2><p>{h(message)}</p></section>', scope)
