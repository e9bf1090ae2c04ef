"""Periodic progress lines for long loops: count, rate and time left."""

import time

from absl import logging


def format_duration(seconds):
    """H:MM:SS, or M:SS under an hour."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Logs `what done/total (pct) rate/s ETA` at most every `every` seconds, and at the end."""

    def __init__(self, what, total, every=5.0, clock=time.monotonic, log=logging.info):
        self.what, self.total, self.every = what, total, every
        self.clock, self.log = clock, log
        self.done = 0
        self.start = self.last = clock()

    def update(self, count=1):
        self.done += count
        now = self.clock()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            self.log(self.line(now))

    def line(self, now=None):
        elapsed = max((now or self.clock()) - self.start, 1e-9)
        rate = self.done / elapsed
        line = f"{self.what}: {self.done:,}/{self.total:,}"
        if self.total:
            line += f" ({100 * self.done / self.total:.0f}%)"
        line += f" {rate:,.0f}/s elapsed {format_duration(elapsed)}"
        if rate > 0 and self.done < self.total:
            line += f" ETA {format_duration((self.total - self.done) / rate)}"
        return line
