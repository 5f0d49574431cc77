"""The dashboard: server-rendered Chinese pages over the same payloads as the JSON API.
No script at all: sorting and filtering are links and forms, so a projector, a phone and a
locked-down office browser all see the same thing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from aiohttp import web
from sqlmodel import Session

from bot.web import params as P
from bot.web.api import load_detail, load_stats
from bot.web.charts import trend_svg
from bot.web.context import PHOTOS, context, unit_of
from bot.web.layout import CSS_PATH, attr, h, is_big, link, message_page, mode, page
from bot.web.reads import overdue, page_of
from bot.web.stats import Week, trend
from bot.web.views import Names, iso, people_of, summary
from models.vocabulary import LEVEL_NAMES, STATUS_NAMES, Litigation

SORTS = {
    "name": "乡镇(街道)",
    "entered": "新增",
    "resolved": "办结",
    "rate": "办结率",
    "open": "在办",
    "overdue": "逾期",
    "median_days": "办结用时中位数(天)",
}
OVERDUE_SHOWN = 20


def html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _clean(query: Mapping[str, str]) -> dict[str, str]:
    """A submitted form sends its empty fields too; they mean "no filter"."""
    return {k: v for k, v in query.items() if v != ""}


def _toggle(request: web.Request, query: Mapping[str, str]) -> str:
    """This very page in the other text size."""
    return link(request.path, {**query, "big": None if is_big(query) else "1"})


def _keep(big: bool) -> str:
    """A form's hidden field that keeps the text size across a submit."""
    return '<input type="hidden" name="big" value="1">' if big else ""


async def dashboard(request: web.Request) -> web.Response:
    ctx, scope, query = context(request), unit_of(request), _clean(request.query)
    today, big = ctx.today(), is_big(query)
    try:
        period = P.period(query, today)
        sort = P.choice_param(query, "sort", tuple(SORTS)) or "rate"
        order = P.choice_param(query, "order", ("asc", "desc")) or ("asc" if sort == "name" else "desc")
    except P.BadRequest as e:
        return html(message_page("参数有误", str(e), scope), 400)

    def late(session: Session) -> tuple[list[dict[str, Any]], int]:
        rows, total = overdue(session, scope, today, OVERDUE_SHOWN)
        names = Names.load(session, ctx.directory, people_of(rows), rows)
        return [summary(i, names, today) for i in rows], total

    # Independent reads side by side: with a core to spare the page costs its slowest scan, not their sum.
    numbers, weeks, (late_rows, late_total) = await asyncio.gather(
        load_stats(ctx, scope, period), ctx.read(lambda s: trend(s, scope, ctx.now())), ctx.read(late)
    )
    body = "\n".join(
        [
            _period_form(numbers["period"], today, big),
            _levels(numbers),
            _trend(weeks),
            _ranking(numbers, query, sort, order),
            _overdue(late_rows, late_total, big),
        ]
    )
    return html(page("总览", body, scope, iso(ctx.now()) or "", big, _toggle(request, query)))


def _period_form(period: dict[str, str], today: date, big: bool = False) -> str:
    first = today.replace(day=1)
    last_year = today.year - 1
    quick: list[tuple[str, dict[str, Any]]] = [
        ("本年", {"from": f"{today.year}-01-01", "to": f"{today.year}-12-31"}),
        ("本月", {"from": first.isoformat(), "to": today.isoformat()}),
        ("上月", {"from": (first - timedelta(days=1)).replace(day=1).isoformat(), "to": first - timedelta(days=1)}),
        (f"{last_year}年", {"from": f"{last_year}-01-01", "to": f"{last_year}-12-31"}),
    ]
    exports = {"from": period["from"], "to": period["to"]}
    return f"""<section class="card">
<h2>统计时段:{h(period["label"])}</h2>
<form class="filters" method="get" action="/dashboard">{_keep(big)}
<label>开始<input type="date" name="from" value="{attr(period["from"])}"></label>
<label>结束<input type="date" name="to" value="{attr(period["to"])}"></label>
<button type="submit">查看</button>
</form>
<p class="quick">{"".join(f'<a href="{link("/dashboard", {**p, **mode(big)})}">{h(n)}</a>' for n, p in quick)}
<span>导出本时段登记的台账:</span><a href="{link("/api/export.xlsx", exports)}">Excel</a>
<a href="{link("/api/export.csv", exports)}">CSV</a></p>
</section>"""


def _num(key: str, value: int, label: str, done: bool = False) -> str:
    cls = "bignum done" if done else "bignum"
    return f'<div class="{cls}"><span class="n" data-stat="{key}">{value}</span><span class="k">{h(label)}</span></div>'


def _levels(s: dict[str, Any]) -> str:
    d, t, v = s["levels"]["district"], s["levels"]["township"], s["levels"]["village"]
    return f"""<div class="levels">
<section class="level district"><h2>区级层面</h2>
<div class="bignums">{_num("district_assigned", d["assigned"], "累计交办")}{
        _num("district_resolved", d["resolved"], "已化解", True)
    }</div>
<div class="sub"><span>"周二无会日"办理 <b data-stat="tuesday_assigned">{d["tuesday_assigned"]}</b> 件,已化解
<b data-stat="tuesday_resolved">{d["tuesday_resolved"]}</b> 件</span>
<span>平时交办 <b data-stat="regular_assigned">{d["regular_assigned"]}</b> 件,已化解
<b data-stat="regular_resolved">{d["regular_resolved"]}</b> 件</span></div>
</section>
<section class="level township"><h2>乡镇(街道)层面</h2>
<div class="bignums">{_num("township_entered", t["entered"], "累计提交")}{
        _num("township_resolved", t["resolved"], "办结", True)
    }</div>
</section>
<section class="level village"><h2>村(社区)层面</h2>
<div class="bignums">{_num("village_entered", v["entered"], "累计排摸")}{
        _num("village_resolved", v["resolved"], "办结", True)
    }</div>
</section>
</div>
<section class="card"><h2>报告段落({h(s["unit"]["name"])} · {h(s["period"]["label"])})</h2>
<blockquote class="paragraph" id="paragraph">{h(s["paragraph"])}</blockquote></section>"""


def _trend(weeks: list[Week]) -> str:
    new, done = sum(w.new for w in weeks), sum(w.resolved for w in weeks)
    return f"""<section class="card" id="trend"><h2>近{len(weeks)}周趋势(新增 {new} 件 · 办结 {done} 件)</h2>
<div class="chart">{trend_svg(weeks)}</div></section>"""


def _sort_value(row: dict[str, Any], key: str) -> Any:
    # By name means in the org file's order: code-point order of Chinese names means nothing.
    return {"rate": row["resolution_rate"], "name": row["id"]}.get(key, row.get(key))


def _bar(rate: float) -> str:
    # An SVG rect rather than a styled span: the page's CSP forbids inline style attributes.
    rect = f'<rect width="{round(rate * 60)}" height="10" rx="2"/>'
    return f'<svg class="bar" width="60" height="10" aria-hidden="true">{rect}</svg>'


def _ranking(s: dict[str, Any], query: Mapping[str, str], sort: str, order: str) -> str:
    rows = list(s["townships"])
    known = [r for r in rows if _sort_value(r, sort) is not None]
    known.sort(key=lambda r: _sort_value(r, sort), reverse=order == "desc")
    rows = known + [r for r in rows if _sort_value(r, sort) is None]  # no figure: always last
    heads = []
    for key, label in SORTS.items():
        flip = "asc" if key == sort and order == "desc" else "desc"
        mark = (" ▼" if order == "desc" else " ▲") if key == sort else ""
        params = {"from": query.get("from"), "to": query.get("to"), "sort": key, "order": flip, "big": query.get("big")}
        cls = ("num " if key != "name" else "") + ("sorted" if key == sort else "")
        heads.append(
            f'<th class="{cls.strip()}"><a href="{link("/dashboard", params)}#ranking">{h(label)}{mark}</a></th>'
        )
    body = []
    for r in rows:
        rate = r["resolution_rate"]
        bar = f"{_bar(rate)}{rate:.0%}" if rate is not None else "—"
        late = f'<span class="overdue">{r["overdue"]}</span>' if r["overdue"] else "0"
        body.append(
            f'<tr data-township="{h(r["name"])}"><td>'
            f'<a href="{link("/dashboard/issues", {"unit": r["name"], "big": query.get("big")})}">'
            f'{h(r["name"])}</a></td><td class="num">{r["entered"]}</td><td class="num">{r["resolved"]}</td>'
            f'<td class="num">{bar}</td><td class="num">{r["open"]}</td><td class="num">{late}</td>'
            f'<td class="num">{h(r["median_days"])}</td></tr>'
        )
    return f"""<section class="card" id="ranking"><h2>乡镇(街道)排名 · 本时段登记的问题截至目前的办理情况</h2>
<table class="ranking"><thead><tr>{"".join(heads)}</tr></thead><tbody>{"".join(body)}</tbody></table></section>"""


ISSUE_COLUMNS = ("编号", "标题", "地点", "层级", "状态", "包案人", "截止")
WRAP = ' class="wrap"'


def _issue_rows(items: list[dict[str, Any]], big: bool = False) -> str:
    """On a phone each row stacks into a short block, each figure after its column's name
    (data-label), instead of a wide table scrolling inside its card."""
    out = []
    for i in items:
        litigation = Litigation.of(i["litigation_risk"], i["litigation_suspected"])
        tags = f'<span class="tag risk">{litigation.label}</span> ' if litigation.label else ""
        tags += '<span class="tag tuesday">周二无会日</span> ' if i["tuesday"] else ""
        late = f'<span class="overdue">逾期{i["overdue_days"]}天</span>' if i["overdue_days"] else ""
        href = link(f"/dashboard/issues/{i['id']}", mode(big))
        cells = (
            f'<a href="{href}">#{i["id"]}</a>',
            f'{tags}<a href="{href}">{h(i["title"])}</a>',
            h(i["place"]),
            h(i["level_name"]),
            h(i["status_name"]),
            h(i["owner"]),
            f"{h(i['deadline'])} {late}",
        )
        tds = "".join(
            f'<td{WRAP if n == 1 else ""} data-label="{label}">{cell}</td>'
            for n, (label, cell) in enumerate(zip(ISSUE_COLUMNS, cells, strict=True))
        )
        out.append(f'<tr data-issue="{i["id"]}">{tds}</tr>')
    head = "<tr>" + "".join(f"<th>{label}</th>" for label in ISSUE_COLUMNS) + "</tr>"
    return f'<table class="issues"><thead>{head}</thead><tbody>{"".join(out)}</tbody></table>'


def _overdue(items: list[dict[str, Any]], total: int, big: bool = False) -> str:
    if not items:
        return '<section class="card" id="overdue"><h2>逾期问题</h2><p class="empty">目前没有逾期问题。</p></section>'
    more = ""
    if total > len(items):
        every = link("/dashboard/issues", {"overdue": "true", **mode(big)})
        more = f'<p class="more"><a href="{every}">全部 {total} 件逾期问题 →</a></p>'
    return f"""<section class="card" id="overdue"><h2>逾期问题(<span class="overdue">{total}</span> 件)</h2>
{_issue_rows(items, big)}{more}</section>"""


async def issues(request: web.Request) -> web.Response:
    ctx, scope, query = context(request), unit_of(request), _clean(request.query)
    today, big = ctx.today(), is_big(query)
    try:
        filters = P.issue_query(query, scope, ctx.directory)
        page_no, per_page = P.paging(query)
    except P.BadRequest as e:
        return html(message_page("参数有误", str(e), scope), 400)
    except P.NotFound as e:
        return html(message_page("未找到", str(e), scope), 404)

    def read(session: Session) -> tuple[list[dict[str, Any]], int]:
        rows, total = page_of(session, scope, filters, today, page_no, per_page)
        names = Names.load(session, ctx.directory, people_of(rows), rows)
        return [summary(i, names, today) for i in rows], total

    items, total = await ctx.read(read)
    pages = max((total + per_page - 1) // per_page, 1)
    nav = []
    if page_no > 1:
        nav.append(f'<a href="{link("/dashboard/issues", {**query, "page": page_no - 1})}">← 上一页</a>')
    nav.append(f"<span>第 {page_no} / {pages} 页 · 共 {total} 件</span>")
    if page_no < pages:
        nav.append(f'<a href="{link("/dashboard/issues", {**query, "page": page_no + 1})}">下一页 →</a>')
    table = _issue_rows(items, big) if items else '<p class="empty">没有符合条件的问题。</p>'
    body = f"""{_filter_form(query)}
<section class="card"><h2>问题列表</h2>{table}<div class="pager">{"".join(nav)}</div></section>"""
    return html(page("问题列表", body, scope, iso(ctx.now()) or "", big, _toggle(request, query)))


def _select(name: str, label: str, options: Mapping[str, str], current: str | None) -> str:
    opts = ['<option value="">全部</option>'] + [
        f'<option value="{h(v)}"{" selected" if v == current else ""}>{h(t)}</option>' for v, t in options.items()
    ]
    return f'<label>{h(label)}<select name="{name}">{"".join(opts)}</select></label>'


def _filter_form(query: Mapping[str, str]) -> str:
    keep = _keep(is_big(query))
    return f"""<section class="card"><form class="filters" method="get" action="/dashboard/issues">{keep}
{_select("status", "状态", STATUS_NAMES, query.get("status"))}
{_select("level", "层级", LEVEL_NAMES, query.get("level"))}
{_select("overdue", "逾期", {"true": "仅逾期", "false": "未逾期"}, query.get("overdue"))}
<label>单位<input name="unit" value="{attr(query.get("unit"))}" placeholder="如 花园街道、航埠镇/新村" maxlength="60">
</label>
<label>关键词<input name="q" value="{attr(query.get("q"))}" maxlength="100"></label>
<label>登记自<input type="date" name="from" value="{attr(query.get("from"))}"></label>
<label>至<input type="date" name="to" value="{attr(query.get("to"))}"></label>
<button type="submit">筛选</button></form></section>"""


async def issue_page(request: web.Request) -> web.Response:
    ctx, scope, query = context(request), unit_of(request), _clean(request.query)
    issue_id = int(request.match_info["id"])
    d = await load_detail(ctx, scope, issue_id, request.app[PHOTOS])
    if d is None:
        return html(message_page("未找到", f"没有 #{issue_id},或不在本令牌的范围内。", scope), 404)
    big = is_big(query)
    return html(page(f"#{d['id']}", _issue_body(d), scope, iso(ctx.now()) or "", big, _toggle(request, query)))


def _when(stamp: str | None) -> str | None:
    """2020-03-02T09:30:00+08:00 as 2020-03-02 09:30 (every time shown is Shanghai time)."""
    return stamp[:16].replace("T", " ") if stamp else None


def _issue_body(d: dict[str, Any]) -> str:
    facts = [
        ("地点", d["place"]),
        ("当前", f"{d['level_name']} · {d['unit']} · {d['status_name']}"),
        ("类别", d["category"]),
        (
            "风险",
            " · ".join(
                filter(
                    None, (d["risk"] or "未评", Litigation.of(d["litigation_risk"], d["litigation_suspected"]).label)
                )
            ),
        ),
        ("上报人", d["reporter"]),
        ("包案人", d["owner"]),
        ("责任部门", d["department"]),
        ("截止日期", (d["deadline"] or "") + (f" · 逾期{d['overdue_days']}天" if d["overdue_days"] else "")),
        ("周二无会日", "是" if d["tuesday"] else "否"),
        ("联系电话", "、".join(d["phones"])),
        ("登记时间", _when(d["created_at"])),
        ("办结时间", _when(d["resolved_at"])),
        ("办理天数", d["days_open"]),
        ("研判意见", d["opinion"]),
        ("办理结果", d["result"]),
    ]
    if d["has_id_number"]:
        facts.append(("身份证号", "原文含身份证号,已隐藏"))
    if d["duplicate_of"]:
        facts.append(("合并", f"已作为重复件并入 #{d['duplicate_of']}"))
    dl = "".join(f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in facts)
    steps = []
    pictures: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for ev in d["events"]:
        pictures.extend((ev, p) for p in ev["pictures"])
        shots = "".join(f"<li>{_photo_state(p)}</li>" for p in ev["pictures"])
        steps.append(
            f'<li data-seq="{ev["seq"]}"><div class="when">{h(_when(ev["at"]))} · {h(ev["level_name"])}'
            f" · {h(ev['unit'])}</div><div><b>{h(ev['actor'])}</b> {h(ev['kind_name'])}"
            f"{':' + h(ev['note']) if ev['note'] else ''}</div>"
            + (f'<ul class="photos-state">{shots}</ul>' if shots else "")
            # Evidence for `liandong verify`, meaningless to an official: shown on demand only.
            + f'<details class="hash"><summary>校验码</summary><code>{h(ev["hash"][:16])}</code></details></li>'
        )
    if pictures:
        items = "".join(_photo_item(d["id"], ev, p) for ev, p in pictures)
        pics = f'<ul class="photos">{items}</ul>'
    else:
        pics = '<p class="empty">暂无照片。</p>'
    return f"""<section class="card"><h2>#{d["id"]} {h(d["title"])}</h2><dl class="facts">{dl}</dl></section>
<section class="card"><h2>问题描述</h2><p class="text">{h(d["text"])}</p></section>
<section class="card" id="timeline"><h2>办理进程({len(d["events"])} 条)</h2><ol class="timeline">{"".join(steps)}</ol>
</section>
<section class="card" id="pictures"><h2>照片({len(pictures)} 张)</h2>{pics}</section>"""


def _photo_state(p: dict[str, Any]) -> str:
    """A picture's line in the timeline: kept with its hash, being fetched, or lost and why."""
    if p["status"] == "stored":
        return f'<span class="photo-stored" title="SHA-256">照片已保存 · {h(p["sha256"][:16])}</span>'
    why = f"({h(p['error'])})" if p["error"] else ""
    return f'<span class="photo-{h(p["status"])}">照片{h(p["status_name"])}{why}</span>'


def _photo_item(issue_id: int, ev: dict[str, Any], p: dict[str, Any]) -> str:
    who = f"{h(_when(ev['at']))} {h(ev['actor'])}"
    if p["status"] != "stored":
        return f'<li data-photo="{h(p["status"])}">{who}:{_photo_state(p)}</li>'
    src = f"/dashboard/issues/{issue_id}/photos/{p['sha256']}"
    short = h(p["sha256"][:16])
    if p["thumb_url"] is None:  # it would not decode: the original, as a link only
        shown = f'<a class="photo-original" href="{attr(src)}">查看原图</a>'
    else:  # the thumbnail, linking to the full photo
        shown = (
            f'<a href="{attr(src)}"><img class="photo" src="{attr(src + "/thumb")}" '
            f'alt="#{issue_id} 照片 {short}" loading="lazy"></a>'
        )
    return f'<li data-photo="stored">{shown}<div>{who} · <span class="hash">{short}</span></div></li>'


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        text=CSS_PATH.read_text(encoding="utf-8"), content_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )
