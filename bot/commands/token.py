"""`liandong token new --unit UNIT [--note TEXT]`: a fresh dashboard/API token, shown once,
and the org-file line that lets it in (the file keeps only its SHA-256)."""

from __future__ import annotations

import argparse
import json
import sys

from bot.config import Settings
from bot.org import load_org
from bot.web.auth import new_token, token_hash


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("token", help="看板与 API 的访问令牌")
    actions = p.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="生成新令牌 (只显示一次)")
    new.add_argument("--unit", required=True, help="令牌可见的单位 (其下级也可见)")
    new.add_argument("--note", default="", help="备注, 如使用人或用途")
    new.add_argument("--url", default="http://127.0.0.1:8081", help="看板地址, 用于打印链接")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    org = load_org(settings.org_file)
    unit = org.directory.find(args.unit) if args.unit else None
    if unit is None:
        print(f"未知或重名的单位: {args.unit} (重名的村请写「乡镇/村」)", file=sys.stderr)
        return 2
    token = new_token()
    label = org.directory.full_name(unit).replace("·", "/")
    entry = {"sha256": token_hash(token), "unit": label}
    if args.note:
        entry["note"] = args.note
    line = "  - {" + ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()) + "}"
    print(f"新令牌 ({unit.name}; 只显示这一次, 请妥善保存):")
    print(token)
    print(f"\n在组织架构文件 {settings.org_file} 的 api_tokens: 下加入这一行 (没有这一节就先加一行 api_tokens:),")
    print("然后重启机器人:")
    print(line)
    base = args.url.rstrip("/")
    print(f"\n看板链接 (首次打开后令牌存入浏览器 Cookie): {base}/dashboard?token={token}")
    print(f"API: curl -H 'Authorization: Bearer <令牌>' {base}/api/stats")
    return 0
