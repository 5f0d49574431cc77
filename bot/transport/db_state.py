"""Whether the database is taking writes, as this process last found it. A database that is
locked past its busy timeout, read-only or unreachable fails every message the same way: it is
said once, as ERROR, when the state changes (and once when it recovers), not once per message;
/healthz and tests read `state`."""

from __future__ import annotations

import logging
import time

from models.db import outage

log = logging.getLogger(__name__)
OK = "ok"


class DatabaseState:
    def __init__(self) -> None:
        self.state = OK  # ok | locked | read-only | missing | corrupt | unavailable
        self.since = time.monotonic()
        self.failures = 0  # writes failed for an outage since the state last changed to one
        self.outages = 0  # times the state left ok

    @property
    def ok(self) -> bool:
        return self.state == OK

    def for_s(self) -> float:
        """How long the state has held."""
        return time.monotonic() - self.since

    def failed(self, e: BaseException) -> bool:
        """Record a failed write; True when it was an outage (retry later), False when it was
        something else (the caller reports it as it would)."""
        why = outage(e)
        if why is None:
            return False
        self.failures += 1
        if why != self.state:
            was, self.state, self.since = self.state, why, time.monotonic()
            self.outages += was == OK
            self.failures = 1
            # The error's type only: its text may carry the connection URL.
            log.error("database %s (%s): messages are kept and retried until it recovers", why, type(e).__name__)
        return True

    def succeeded(self) -> None:
        if self.state == OK:
            return
        log.warning(
            "database writable again after %.1f s (%s, %d writes retried)",
            time.monotonic() - self.since,
            self.state,
            self.failures,
        )
        self.state, self.since, self.failures = OK, time.monotonic(), 0
