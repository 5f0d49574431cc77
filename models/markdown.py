"""The one renderer from the bot's text to DingTalk markdown, applied by the sender to every
message it sends as markdown (replies, notices, job messages, on every channel).

DingTalk's rules, as its robot documentation gives them:
- a single `\\n` does not break a line: it needs two spaces before it ("换行: 建议\\n前后分别加2个
  空格", https://cscoder.cn/docs/open/aliyun/robot-messages-markdown.html, quoting
  open.dingtalk.com/document/orgapp/message-type); every line break here gets them;
- `*` is emphasis, so `138****5678、139****4321` would turn into italics and lose its stars:
  every `*` is written `\\*` (a markdown escape; the bot's texts never mean emphasis);
- ✅ (U+2705) and ⏳ are emoji only: on office PCs without a colour-emoji font they show as an
  empty box. They become √ (U+221A) and ○ (U+25CB), both in GB2312, so every Chinese font has them.
The bot's own sentences are written with 【】 and · rather than symbols (handlers/replies.py)."""

from __future__ import annotations

import re

BREAK = "  \n"
_SAFE_GLYPHS = {"✅": "√", "✔️": "√", "✔": "√", "❌": "×", "☑": "√", "⏳": "○"}
_TRAILING = re.compile(r"[ \t]+\n")


def render_markdown(text: str) -> str:
    """The text as DingTalk markdown: lines that break where they break, stars that stay stars,
    and only glyphs an old office PC shows."""
    for glyph, safe in _SAFE_GLYPHS.items():
        text = text.replace(glyph, safe)
    text = re.sub(r"(?<!\\)\*", r"\\*", text)
    text = _TRAILING.sub("\n", text.replace("\r\n", "\n")).rstrip()
    return re.sub(r"(?<!\n)\n(?!\n)", BREAK, text)
