"""The one line a lead scans: the 问题/反映 part of the post where one is marked, cut at a
sentence or clause end, at most 30 characters, phones and ID numbers masked."""

from __future__ import annotations

import re

from handlers.intake.text import clean
from models.masking import mask

TITLE_LENGTH = 30
NO_TITLE = "(无标题)"
MIN_CLAUSE_CUT = 16

# A template field: a short label and a colon, at the start of a line or after a separator.
_FIELD = re.compile(r"(?:^|(?<=[\s,;。!?、】\]]))([\u4e00-\u9fff()]{2,8})\s*:")
_PROBLEM_FIELDS = frozenset(
    (
        "问题描述", "问题内容", "问题情况", "反映内容", "反映问题", "反映事项", "反映情况", "主要问题", "具体问题",
        "存在问题", "问题", "事由", "基本情况", "情况说明", "情况", "简要情况", "矛盾纠纷", "纠纷情况", "事项",
        "诉求事项", "内容",
    )
)  # fmt: skip
# "村民反映…": the words after an unlabelled 反映 (not 反映人, not "向区里反映过").
_REPORTED = re.compile(r"反映(?![人者过到至给的])(?:了|说|称)?\s*:?\s*")
_HEADER = re.compile(r"^(?:【[^】]{0,20}】|\[[^\]]{0,20}\]|#[^#\s]{1,12}#)\s*")
_GREETING = re.compile(r"^(?:各位领导|领导|您好|你好|大家好|报告|汇报|紧急|急|注意)[,!: ]*")
_SENTENCE_END = re.compile(r"[\n。!?;]")
_CLAUSE = re.compile(r"(?<=[,、])")


def _marked_body(text: str) -> str:
    fields = list(_FIELD.finditer(text))
    for i, m in enumerate(fields):
        if m.group(1) in _PROBLEM_FIELDS:
            end = fields[i + 1].start() if i + 1 < len(fields) else len(text)
            body = text[m.end() : end].strip()
            if body:
                return body
    head = text[: max(len(text) // 2, 40)]  # a 反映 late in a ramble is rarely the subject
    for m in _REPORTED.finditer(head):
        rest = text[m.end() :]
        clause = re.split(r"[,。!?;\n]", rest, maxsplit=1)[0]
        if len(clause.strip()) >= 4:
            return rest
    return text


def title_of(text: str) -> str:
    """One scannable line: the 问题/反映 part where marked, cut at a sentence or clause end."""
    body = _marked_body(clean(text))
    body = _GREETING.sub("", _HEADER.sub("", body.strip())).strip()
    sentence = _SENTENCE_END.split(mask(body).strip(), maxsplit=1)[0].strip(" ,:")
    title = ""
    for clause in _CLAUSE.split(sentence):
        if len(title) + len(clause) > TITLE_LENGTH:
            if len(title) < MIN_CLAUSE_CUT:  # stopping at this clause would say too little
                title = (title + clause)[:TITLE_LENGTH]
            break
        title += clause
    return title.rstrip(",、 ")[:TITLE_LENGTH].strip() or NO_TITLE
