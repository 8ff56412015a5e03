"""Counting and rate-limited logging of messages that break the protocol.

A flood of garbage must neither crash a process nor flood its log: each reason is
counted, and at most one line per `interval` seconds summarises what arrived.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from typing import Any, TypeVar

from pydantic import TypeAdapter

M = TypeVar("M")

NOT_JSON: Any = object()


class MalformedCounter:
    def __init__(self, logger: logging.Logger, interval: float = 5.0) -> None:
        self._log = logger
        self._interval = interval
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._last_log = 0.0
        self._since_log = 0

    def record(self, topic: str, reason: str, detail: str = "") -> None:
        with self._lock:
            self._counts[reason] += 1
            self._since_log += 1
            now = time.monotonic()
            if now - self._last_log < self._interval:
                return
            count, self._since_log, self._last_log = self._since_log, 0, now
        self._log.warning("dropped %d malformed message(s); latest on %s: %s %s", count, topic, reason, detail[:200])

    def parse_json(self, topic: str, payload: bytes) -> Any:
        """The payload's JSON, or NOT_JSON (counted as malformed "json") when it is not UTF-8 JSON.

        A sentinel, not None: `null` is valid JSON, and it is the caller's schema that refuses it."""
        try:
            return json.loads(bytes(payload))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: deep nesting
            self.record(topic, "json", str(exc))
            return NOT_JSON

    def parse_model(self, topic: str, payload: bytes, model: type[M] | TypeAdapter[M], reason: str) -> M | None:
        """The payload validated as `model` (a pydantic model, or an adapter of a union of models such as the stats
        of every role), or None (counted as `json` or `reason`)."""
        data = self.parse_json(topic, payload)
        if data is NOT_JSON:
            return None
        try:
            return model.validate_python(data) if isinstance(model, TypeAdapter) else model.model_validate(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            self.record(topic, reason, str(exc).splitlines()[0])
            return None

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_reason(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
