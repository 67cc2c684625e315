"""One progress line for long work: ``[label] done/total unit  rate unit/s  ETA m:ss  extra``.

On a terminal the line is rewritten in place (at most every ``tty_interval`` s); in a log
(CI, a file) a new line is printed at most every ``log_interval`` s. Used by the patch job
(sources), the trainer (steps) and live upscaling (frames).
"""

import sys
import time
from typing import Optional, TextIO

STDERR = "stderr"  # the default stream: sys.stderr as it is when the line is made (tests swap it)


class ProgressLine:
    """``stream=None`` shows nothing (quiet runs)."""

    def __init__(self, label: str, total: Optional[int] = None, unit: str = "", stream: Optional[TextIO] = STDERR,
                 tty_interval: float = 0.5, log_interval: float = 5.0):
        stream = sys.stderr if stream is STDERR else stream
        self.label, self.total, self.unit, self.stream = label, total, unit, stream
        self.tty = bool(stream) and hasattr(stream, "isatty") and stream.isatty()
        self.interval = tty_interval if self.tty else log_interval
        self.t0 = time.perf_counter()
        self.last = -1e9
        self.shown = False

    def elapsed(self) -> float:
        return max(time.perf_counter() - self.t0, 1e-9)

    def update(self, done: int, extra: str = "", final: bool = False, force: bool = False,
               fraction: Optional[float] = None) -> None:
        """Show ``done`` (of ``total``); skipped if the last line is younger than the interval,
        unless ``force`` or ``final`` (the last line, which ends the in-place line).

        ``fraction``: the share of the work done, when the items differ in size (a video and an
        image are one source each); the ETA then comes from it rather than from ``done``."""
        if not self.stream:
            return
        now = time.perf_counter()
        if not (final or force) and now - self.last < self.interval:
            return
        self.last = now
        rate = done / self.elapsed()
        unit = f" {self.unit}" if self.unit else ""
        line = f"[{self.label}] {done:,}" + (f"/{self.total:,}" if self.total else "") + unit
        if fraction is not None and not final:
            line += f" ({min(fraction, 1.0):.0%} of the work)"
        line += f"  {rate:,.1f}{unit or ' items'}/s"
        eta = None
        if fraction is not None and not final:
            eta = self.elapsed() * (1 - fraction) / fraction if fraction > 0 else float("nan")
        elif self.total and not final:
            eta = max(self.total - done, 0) / rate if rate > 0 else float("nan")
        if eta is not None:
            line += "  ETA " + ("--:--" if eta != eta else f"{int(eta) // 60}:{int(eta) % 60:02d}")
        if final:
            line += f"  in {self.elapsed():.1f} s"
        if extra:
            line += f"  {extra}"
        if self.tty:
            self.stream.write("\r" + line.ljust(78) + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.shown = True
