"""The OpenAPI document of /api, built from the same constants the handlers check against
(tests compare its paths with the registered routes and fuzz every operation against it)."""

from __future__ import annotations

from typing import Any

from bot.web import params as P
from bot.web.auth import COOKIE
from bot.web.export import CSV_TYPE, XLSX_TYPE
from models.vocabulary import LEVELS, STATUSES

MAX_ISSUE_ID = 2**31 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(props),
        "properties": props,
        "additionalProperties": False,
    }
    if nullable:
        schema["nullable"] = True
    return schema


def _s(nullable: bool = False, **extra: Any) -> dict[str, Any]:
    return {"type": "string", **({"nullable": True} if nullable else {}), **extra}


INT = {"type": "integer", "minimum": 0}
BOOL = {"type": "boolean"}


def _param(name: str, schema: dict[str, Any], description: str, where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}


DATES = [
    _param("from", _s(format="date"), "起始日期(含),Asia/Shanghai;早于 1970 年按 1970-01-01 计"),
    _param("to", _s(format="date"), "截止日期(含);早于 from 时结果为空"),
]
FILTERS = [
    _param("status", _s(enum=list(STATUSES)), "当前状态"),
    _param("level", _s(enum=list(LEVELS)), "当前层级"),
    _param(
        "unit",
        _s(minLength=1, maxLength=P.MAX_UNIT),
        "单位名称、别名或「乡镇/村」,限本令牌范围内;未知或范围外为 404",
    ),
    _param("overdue", BOOL, "true: 仅在办且已过截止日期;false: 其余"),
    _param("q", _s(minLength=1, maxLength=P.MAX_Q), "标题或内容包含的文字"),
    *[{**p, "description": "登记" + p["description"]} for p in DATES],
]
PAGING = [
    _param("page", {"type": "integer", "minimum": 1, "maximum": P.MAX_PAGE}, "页码,从 1 开始"),
    _param("per_page", {"type": "integer", "minimum": 1, "maximum": P.MAX_PER_PAGE}, "每页条数,默认 20"),
]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "参数不符合本文档"),
    "401": _json(_ref("Error"), "缺少令牌或令牌无效"),
    "404": _json(_ref("Error"), "不存在,或不在本令牌的范围内"),
}

SUMMARY = {
    "id": {"type": "integer"},
    "title": _s(),
    "place": _s(),
    "township": _s(True),
    "village": _s(True),
    "unit": _s(True),
    "level": _s(enum=list(LEVELS)),
    "level_name": _s(),
    "status": _s(enum=list(STATUSES)),
    "status_name": _s(),
    "category": _s(),
    "risk": _s(True),
    "litigation_risk": {
        **BOOL,
        "description": "行政败诉风险「是」:针对政府或其决定的诉讼、复议、信访(与 litigation_suspected 不同时为真)",
    },
    "litigation_suspected": {**BOOL, "description": "「疑似」行政败诉风险:扬言起诉但对象不明;两者皆假为「否」"},
    "owner": _s(True),
    "department": _s(True),
    "deadline": _s(True, format="date"),
    "overdue_days": INT,
    "days_open": INT,
    "tuesday": BOOL,
    "created_at": _s(format="date-time"),
    "resolved_at": _s(True, format="date-time"),
}
PHOTO = {
    "status": _s(enum=["stored", "pending", "lost", "not_kept"]),
    "status_name": _s(),
    "sha256": _s(True, description="已保存照片内容的 SHA-256"),
    "bytes": {"type": "integer", "nullable": True},
    "content_type": _s(True),
    "url": _s(True, description="照片地址(同一令牌可读)"),
    "thumb_url": _s(True, description="缩略图地址(JPEG,长边 320 像素);图片无法解码时为空,只给原图"),
    "error": _s(True, description="未能保存的原因"),
}
EVENT = {
    "seq": {"type": "integer", "minimum": 1},
    "kind": _s(),
    "kind_name": _s(),
    "at": _s(format="date-time"),
    "actor": _s(True),
    "level": _s(enum=list(LEVELS)),
    "level_name": _s(),
    "unit": _s(True),
    "note": _s(),
    "tuesday": BOOL,
    "pictures": {"type": "array", "items": _ref("Photo"), "description": "照片事件的各张照片(钉钉下载码不外露)"},
    "hash": _s(),
    "prev_hash": _s(),
}
DETAIL = {
    **SUMMARY,
    "text": _s(),
    "phones": {"type": "array", "items": _s(), "description": "已隐藏中间四位"},
    "has_id_number": BOOL,
    "reporter": _s(True),
    "opinion": _s(True),
    "result": _s(True),
    "duplicate_of": {"type": "integer", "nullable": True},
    "events": {"type": "array", "items": _ref("Event")},
}
TOWNSHIP = {
    "id": {"type": "integer"},
    "name": _s(),
    "entered": INT,
    "resolved": INT,
    "open": INT,
    "overdue": INT,
    "resolution_rate": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
    "median_days": {"type": "number", "minimum": 0, "nullable": True},
}
STATS = {
    "unit": _obj({"id": {"type": "integer"}, "name": _s(), "kind": _s()}),
    "period": _obj({"from": _s(format="date"), "to": _s(format="date"), "label": _s()}),
    "levels": _obj(
        {
            "district": _obj(
                {
                    k: INT
                    for k in (
                        "assigned",
                        "resolved",
                        "tuesday_assigned",
                        "tuesday_resolved",
                        "regular_assigned",
                        "regular_resolved",
                    )
                }
            ),
            "township": _obj({"entered": INT, "resolved": INT}),
            "village": _obj({"entered": INT, "resolved": INT}),
        }
    ),
    "paragraph": _s(description="与群聊「统计」同一段落"),
    "townships": {"type": "array", "items": _ref("Township")},
}


def _binary(media: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string", "format": "binary"}}}}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "两难问题三级联动 API",
            "version": "1.0.0",
            "description": "只读。每个令牌绑定一个单位,只能看到该单位及其下级的问题。手机号、身份证号均已隐藏。",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "paths": {
            "/api/stats": {
                "get": {
                    "operationId": "getStats",
                    "summary": "§2 各层级统计(与「统计」相同)及各乡镇(街道)办理情况",
                    "description": "乡镇行:本时段登记(不含已合并的重复件)的问题截至目前的办结、在办、逾期件数,"
                    "办结率 = 办结/新增,办结用时为登记到办结的天数中位数。默认本年。",
                    "parameters": DATES,
                    "responses": {"200": _json(_ref("Stats"), "统计"), "400": ERRORS["400"], "401": ERRORS["401"]},
                }
            },
            "/api/issues": {
                "get": {
                    "operationId": "listIssues",
                    "summary": "问题列表,新的在前,分页",
                    "parameters": FILTERS + PAGING,
                    "responses": {"200": _json(_ref("IssuePage"), "一页问题"), **ERRORS},
                }
            },
            "/api/issues/{id}": {
                "get": {
                    "operationId": "getIssue",
                    "summary": "一个问题的全部字段与完整进程(事件带哈希链)",
                    "parameters": [
                        _param("id", {"type": "integer", "minimum": 1, "maximum": MAX_ISSUE_ID}, "问题编号", "path")
                    ],
                    "responses": {
                        "200": _json(_ref("IssueDetail"), "问题"),
                        "401": ERRORS["401"],
                        "404": ERRORS["404"],
                    },
                }
            },
            "/api/issues/{id}/photos/{sha256}": _photo_route(
                "getPhoto",
                "问题进程中已保存的一张照片(原图,JPEG/PNG/GIF/WebP)",
                "照片",
                ("image/jpeg", "image/png", "image/gif", "image/webp"),
            ),
            "/api/issues/{id}/photos/{sha256}/thumb": _photo_route(
                "getPhotoThumb", "一张已保存照片的缩略图(JPEG,长边 320 像素)", "缩略图", ("image/jpeg",)
            ),
            "/api/export.xlsx": {
                "get": {
                    "operationId": "exportXlsx",
                    "summary": "台账 Excel(筛选同 /api/issues,不分页)",
                    "parameters": FILTERS,
                    "responses": {"200": _binary(XLSX_TYPE, "台账"), **ERRORS},
                }
            },
            "/api/export.csv": {
                "get": {
                    "operationId": "exportCsv",
                    "summary": "台账 CSV(UTF-8 带 BOM;筛选同 /api/issues,不分页)",
                    "parameters": FILTERS,
                    "responses": {"200": _binary(CSV_TYPE, "台账"), **ERRORS},
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "本文档(无需令牌)",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 文档")},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "liandong token new 生成的令牌"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": COOKIE, "description": "看板链接设置"},
            },
            "schemas": {
                "Error": _obj({"error": _s(), "message": _s()}),
                "IssueSummary": _obj(SUMMARY),
                "Photo": _obj(PHOTO),
                "Event": _obj(EVENT),
                "IssueDetail": _obj(DETAIL),
                "IssuePage": _obj(
                    {
                        "items": {"type": "array", "items": _ref("IssueSummary")},
                        "page": {"type": "integer", "minimum": 1},
                        "per_page": {"type": "integer", "minimum": 1},
                        "total": INT,
                        "pages": INT,
                    }
                ),
                "Township": _obj(TOWNSHIP),
                "Stats": _obj(STATS),
            },
        },
    }


def _photo_route(operation: str, summary: str, description: str, media: tuple[str, ...]) -> dict[str, Any]:
    """A photo of a case, or its thumbnail: the same path parameters and answers."""
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "parameters": [
                _param("id", {"type": "integer", "minimum": 1, "maximum": MAX_ISSUE_ID}, "问题编号", "path"),
                _param("sha256", _s(pattern="^[0-9a-f]{64}$"), "照片内容的 SHA-256", "path"),
            ],
            "responses": {
                "200": {
                    "description": description,
                    "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in media},
                },
                "401": ERRORS["401"],
                "404": ERRORS["404"],
            },
        }
    }
