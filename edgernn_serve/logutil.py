"""Logging helpers shared by the stepping loop, the sources and the sinks."""

from __future__ import annotations

import time
from collections import Counter


class RateLimitedLog:
    """Log a recurring event at most once per ``period`` s per reason, with a count."""

    def __init__(self, logger, period: float = 5.0) -> None:
        self.logger, self.period = logger, period
        self._last: dict = {}
        self._suppressed: Counter = Counter()

    def warning(self, reason: str, msg: str) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -1e9) >= self.period:
            extra = self._suppressed.pop(reason, 0)
            self.logger.warning(msg + (f" (and {extra} more since the last report)"
                                       if extra else ""))
            self._last[reason] = now
        else:
            self._suppressed[reason] += 1
