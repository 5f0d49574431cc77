"""The JSON API (described by /api/openapi.json). Every route sees only the token's subtree:
another unit's issue is 404, exactly like one that does not exist."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlmodel import Session

from bot.photos_store import PhotoStore
from bot.web import export
from bot.web import params as P
from bot.web.context import PHOTOS, WebContext, context, unit_of
from bot.web.openapi import MAX_ISSUE_ID, document
from bot.web.reads import one, page_of, photos_of, stored_photo
from bot.web.stats import stats_json, township_rows
from bot.web.views import Names, detail, people_of, summary
from models.counts import Period, count_levels
from models.directory import UnitInfo
from models.queries import events_of


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        data, status=status, headers=headers, dumps=lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":"))
    )


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": code, "message": message}, status, headers)


def _refused(e: Exception) -> web.Response:
    if isinstance(e, P.NotFound):
        return error(404, "not_found", str(e))
    return error(400, "bad_request", str(e))


async def load_stats(ctx: WebContext, scope: UnitInfo, period: Period) -> dict[str, Any]:
    """The §2 counts and the township rows are independent scans: run them side by side (SQLite
    in WAL mode and PostgreSQL both read in parallel, and the drivers release the GIL while a
    statement runs), so with a core to spare the answer costs the slower of the two."""
    now, today = ctx.now(), ctx.today()
    counts, rows = await asyncio.gather(
        ctx.read(lambda s: count_levels(s, period, scope, now)),
        ctx.read(lambda s: township_rows(s, scope, ctx.directory, period, today)),
    )
    return stats_json(scope, period, counts, rows)


async def get_stats(request: web.Request) -> web.Response:
    ctx, scope = context(request), unit_of(request)
    today = ctx.today()
    try:
        period = P.period(request.query, today)
    except P.BadRequest as e:
        return _refused(e)
    return json_response(await load_stats(ctx, scope, period))


async def get_issues(request: web.Request) -> web.Response:
    ctx, scope = context(request), unit_of(request)
    today = ctx.today()
    try:
        filters = P.issue_query(request.query, scope, ctx.directory)
        page, per_page = P.paging(request.query)
    except (P.BadRequest, P.NotFound) as e:
        return _refused(e)

    def read(session: Session) -> dict[str, Any]:
        rows, total = page_of(session, scope, filters, today, page, per_page)
        names = Names.load(session, ctx.directory, people_of(rows), rows)
        return {
            "items": [summary(i, names, today) for i in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": (total + per_page - 1) // per_page,
        }

    return json_response(await ctx.read(read))


async def load_detail(
    ctx: WebContext, scope: UnitInfo, issue_id: int, store: PhotoStore | None = None
) -> dict[str, Any] | None:
    """An issue with its whole timeline, or None when it does not exist or lies outside `scope`
    (the API and the issue page both answer those two alike). With the photo store, each kept
    picture that has a thumbnail gets its `thumb_url`."""
    today = ctx.today()

    def read(session: Session) -> dict[str, Any] | None:
        issue = one(session, scope, issue_id) if issue_id <= MAX_ISSUE_ID else None
        if issue is None or issue.id is None:
            return None
        events = events_of(session, issue.id)
        names = Names.load(session, ctx.directory, [*people_of([issue]), *(e.actor_id for e in events)])
        return detail(issue, events, names, today, photos_of(session, issue.id))

    found = await ctx.read(read)
    if found is not None and store is not None:
        await asyncio.to_thread(_thumbs, found, store)
    return found


def _thumbs(d: dict[str, Any], store: PhotoStore) -> None:
    """The thumbnail's address where one was made (not for a picture that would not decode)."""
    for ev in d["events"]:
        for p in ev["pictures"]:
            if p["sha256"] is not None and store.has_thumb(p["sha256"]):
                p["thumb_url"] = f"{p['url']}/thumb"


async def get_issue(request: web.Request) -> web.Response:
    issue_id = int(request.match_info["id"])  # the route admits digits only
    found = await load_detail(context(request), unit_of(request), issue_id, request.app[PHOTOS])
    if found is None:
        return error(404, "not_found", f"没有 #{issue_id},或不在本令牌的范围内")
    return json_response(found)


async def get_photo(request: web.Request) -> web.Response:
    """A kept picture, by the sha256 the timeline shows: only for a reader whose scope holds the
    issue (anything else is 404, as for the issue itself). Served as stored, or under `/thumb` its
    JPEG thumbnail (404 where the picture would not decode: the page then links the original)."""
    ctx, scope = context(request), unit_of(request)
    issue_id, sha256 = int(request.match_info["id"]), request.match_info["sha256"]
    thumb = request.path.endswith("/thumb")
    row = await ctx.read(lambda s: stored_photo(s, scope, issue_id, sha256)) if issue_id <= MAX_ISSUE_ID else None
    store = request.app[PHOTOS]
    data = await asyncio.to_thread(store.read_thumb if thumb else store.read, sha256) if row is not None else None
    if row is None or data is None:
        if request.path.startswith("/api/"):
            return error(404, "not_found", f"#{issue_id} 没有这张照片,或不在本令牌的范围内")
        return web.Response(status=404, text="未找到", content_type="text/plain", charset="utf-8")
    return web.Response(
        body=data,
        content_type="image/jpeg" if thumb else row.content_type or "application/octet-stream",
        headers={"Content-Disposition": f'inline; filename="{sha256[:16]}{".thumb.jpg" if thumb else ""}"'},
    )


def _exporter(
    ext: str, content_type: str, charset: str | None, render: Callable[[list[export.Row]], bytes]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        ctx, scope = context(request), unit_of(request)
        today = ctx.today()
        try:
            filters = P.issue_query(request.query, scope, ctx.directory)
        except (P.BadRequest, P.NotFound) as e:
            return _refused(e)

        def rows(session: Session) -> list[export.Row]:
            return export.ledger_rows(session, scope, filters, Names.everyone(session, ctx.directory), today)

        # Rendered after the read transaction has ended, so it holds no snapshot for seconds.
        body = await asyncio.to_thread(render, await ctx.read(rows))
        name = export.filename(scope, today, ext)
        disposition = f"attachment; filename=\"liandong-ledger.{ext}\"; filename*=UTF-8''{quote(name)}"
        return web.Response(
            body=body, content_type=content_type, charset=charset, headers={"Content-Disposition": disposition}
        )

    return handler


get_export_xlsx = _exporter("xlsx", export.XLSX_TYPE, None, export.to_xlsx)
get_export_csv = _exporter("csv", export.CSV_TYPE, "utf-8", export.to_csv)


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(document())
