"""DingTalk markdown to safe HTML for the sandbox page: the subset DingTalk renders in a group
(headings, quotes, lists, bold, italic, links, line breaks) and @-mentions as DingTalk shows
them. Everything is escaped first, so a message can never inject markup into the page."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_QUOTE = re.compile(r"^&gt;\s?(.*)$")  # matched after escaping
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_ORDERED = re.compile(r"^\s*(\d{1,3})\.\s+(.*)$")
_RULE = re.compile(r"^\s*(-{3,}|\*{3,})\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\((https?://[^\s)]+)\)")
# As a markdown renderer reads stars: 138****5678、139****4321 unescaped is emphasis there too
# (the sandbox is never kinder than DingTalk); the bot escapes them (models/markdown.py).
_BOLD = re.compile(r"\*\*(?![\s*])(.+?)(?<![\s*])\*\*")
_ITALIC = re.compile(r"(?<!\*)\*(?![\s*])(.+?)(?<![\s*])\*(?!\*)")
_STAR = "\x00"  # an escaped star while emphasis is read


class Mentions:
    """Turns `@staffId` (how the bot's replies carry mentions) and `@姓名` (how people type
    them) into a highlighted `@姓名`. Longest label first, so `@t1011` is never read as `@t101`."""

    def __init__(self, names: Mapping[str, str], extra: tuple[str, ...] = (), ids_only: bool = False) -> None:
        self.names = dict(names)  # staffId → name
        labels = {*self.names} if ids_only else {*self.names, *self.names.values(), *extra}
        alternatives = "|".join(re.escape(html.escape(x)) for x in sorted(labels, key=len, reverse=True) if x)
        self._pattern = re.compile(f"@({alternatives})") if alternatives else None

    def of_message(self, at_user_ids: list[str]) -> Mentions:
        """For a bot message, as DingTalk shows it: only an @<staffId> of someone in its at list
        becomes @name; anything else (an @name, an id nobody was @-ed by) stays as written."""
        return Mentions({u: self.names[u] for u in at_user_ids if u in self.names}, ids_only=True)

    def highlight(self, escaped: str) -> str:
        if self._pattern is None:
            return escaped

        def span(m: re.Match[str]) -> str:
            label = html.unescape(m.group(1))
            return f'<span class="at">@{html.escape(self.names.get(label, label))}</span>'

        return self._pattern.sub(span, escaped)


def _emphasis(escaped: str, mentions: Mentions) -> str:
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    escaped = _ITALIC.sub(r"<em>\1</em>", escaped)
    return mentions.highlight(escaped)


def _inline(escaped: str, mentions: Mentions) -> str:
    # An escaped star is a star, never emphasis (models/markdown.py writes 138\*\*\*\*5678).
    escaped = escaped.replace("\\*", _STAR)
    # Links are cut out first so that a star or an @ inside a URL never becomes markup.
    parts: list[str] = []
    last = 0
    for link in _LINK.finditer(escaped):
        parts.append(_emphasis(escaped[last : link.start()], mentions))
        label = _emphasis(link.group(1), mentions)
        parts.append(f'<a href="{link.group(2)}" target="_blank" rel="noopener">{label}</a>')
        last = link.end()
    parts.append(_emphasis(escaped[last:], mentions))
    return "".join(parts).replace(_STAR, "*")


def render_markdown(text: str, mentions: Mentions) -> str:
    """As DingTalk renders markdown, never kinder: a line break needs two spaces before the `\n`
    (models/markdown.py); a lone `\n` joins the lines of a paragraph with a space."""
    out: list[str] = []
    open_list: str | None = None
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<div>{''.join(para).rstrip().removesuffix('<br>')}</div>")
            para.clear()

    def close_list() -> None:
        nonlocal open_list
        if open_list:
            out.append(f"</{open_list}>")
            open_list = None

    for raw in text.strip("\n").split("\n"):
        line = html.escape(raw.rstrip(), quote=True)
        block = (
            _BULLET.match(line) or _ORDERED.match(line) or _RULE.match(line) or _HEADING.match(line)
        ) or _QUOTE.match(line)
        if line.strip() and not block and open_list is None:
            para.append(_inline(line, mentions) + ("<br>" if raw.endswith("  ") else " "))
            continue
        flush()
        if (bullet := _BULLET.match(line)) and not _RULE.match(line):
            if open_list != "ul":
                close_list()
                out.append("<ul>")
                open_list = "ul"
            out.append(f"<li>{_inline(bullet.group(1), mentions)}</li>")
            continue
        if ordered := _ORDERED.match(line):
            if open_list != "ol":
                close_list()
                out.append(f'<ol start="{int(ordered.group(1))}">')
                open_list = "ol"
            out.append(f"<li>{_inline(ordered.group(2), mentions)}</li>")
            continue
        close_list()
        if _RULE.match(line):
            out.append("<hr>")
        elif heading := _HEADING.match(line):
            level = len(heading.group(1))
            out.append(f'<div class="md-h md-h{level}">{_inline(heading.group(2), mentions)}</div>')
        elif quote := _QUOTE.match(line):
            out.append(f"<blockquote>{_inline(quote.group(1), mentions)}</blockquote>")
        elif line.strip():
            out.append(f"<div>{_inline(line, mentions)}</div>")
        else:
            out.append('<div class="md-gap"></div>')
    flush()
    close_list()
    return "".join(out)


def render_plain(text: str, mentions: Mentions) -> str:
    """A person's text message: no markdown in DingTalk, only line breaks and mentions."""
    return "<br>".join(mentions.highlight(html.escape(line)) for line in text.strip().split("\n"))
