"""Logging set-up: every line passes through the phone/ID mask, whatever a library logs."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from models.masking import mask


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the moment (it may be replaced, e.g. under pytest)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(level: int = logging.INFO) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic says at INFO which dialect it found whenever the schema revision is read (on
    # PostgreSQL, before `run` refuses an old schema in its one line): not news to an operator.
    logging.getLogger("alembic.runtime.migration").setLevel(max(level, logging.WARNING))
