"""Time: one zone for all calendar logic, and a clock that tests can freeze."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


class ShiftedClock:
    """Real time plus an offset that can be moved: the sandbox's 快进 (time keeps running)."""

    def __init__(self, base: Clock | None = None) -> None:
        self.base = base or SystemClock()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def jump_to(self, at: datetime) -> None:
        self.offset = at - self.base.now()

    def reset(self) -> None:
        self.offset = timedelta(0)


def local(dt: datetime) -> datetime:
    """The Shanghai wall time of an aware datetime (naive ones are taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(SHANGHAI)


def day_start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=SHANGHAI)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def short_date(d: date) -> str:
    return f"{d.month}月{d.day}日(周{'一二三四五六日'[d.weekday()]})"
