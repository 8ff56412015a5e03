"""The one interface every power meter implements, and the two errors meters raise.

A meter is built by probing: its constructor either succeeds (the meter can read) or
raises MeterUnavailable with the reason, which `vitfleet power --list` shows verbatim.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from vitfleet.errors import UserError


class MeterUnavailable(UserError):
    """This meter cannot work on this machine; str(error) says why (and how to fix it, when it can be fixed)."""


class MeterReadError(UserError):
    """A meter that probed fine failed one reading (file vanished, garbage value, command failed)."""


class Meter(ABC):
    """Instantaneous electrical power of this board, in watts.

    `source` names where the figure comes from ("rapl", "ina3221-hwmon:VDD_IN", ...);
    `estimated` is True only for figures that are modelled rather than measured;
    `detail` is a one-line human description (what is covered, what is not);
    `min_interval_s` is the shortest sensible gap between reads (a sampler never polls faster),
    for meters whose read is costly (a process spawn) or only updates that often.
    """

    source: str = "unknown"
    estimated: bool = False
    detail: str = ""
    min_interval_s: float = 0.0

    @abstractmethod
    def read(self) -> float:
        """Watts now (or averaged since the previous read, for energy counters). Raises MeterReadError."""

    def close(self) -> None:  # noqa: B027 - optional: most meters hold nothing to release
        """Release threads, subprocesses or service connections; safe to call twice."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
