"""The aggregator's durable record: every prediction (with per-part timings), every board's power
report (`power`), the fleet's power and energy per frame at every stats tick (`fleet_power`) and every fleet
plan the coordinator published (`plans`: which board ran which parts from when, and why).

SQLite in WAL mode, written by one background thread that commits at least every
`commit_interval` seconds, so a crash loses under a second of rows and the fusion
path never waits on the disk. The queue is bounded; rows that do not fit are counted.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from vitfleet.errors import UserError

log = logging.getLogger("vitfleet.aggregator")

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    frame_id INTEGER NOT NULL,
    capture_ns INTEGER NOT NULL,
    fused_ns INTEGER NOT NULL,
    class_id INTEGER NOT NULL,
    class_name TEXT NOT NULL,
    score REAL NOT NULL,
    label INTEGER,
    degraded INTEGER NOT NULL,
    missing_parts TEXT NOT NULL,
    parts TEXT NOT NULL,
    fusion_ms REAL NOT NULL,
    camera TEXT NOT NULL DEFAULT 'cam0'
);
CREATE INDEX IF NOT EXISTS predictions_frame ON predictions(frame_id);
CREATE TABLE IF NOT EXISTS power (
    board TEXT NOT NULL,
    received_ns INTEGER NOT NULL,
    ts REAL,
    watts REAL,
    joules REAL,
    frames INTEGER,
    source TEXT,
    estimated INTEGER
);
CREATE TABLE IF NOT EXISTS fleet_power (
    received_ns INTEGER NOT NULL,
    fleet_watts REAL NOT NULL,
    fleet_joules REAL NOT NULL,
    fused_frames INTEGER NOT NULL,
    mj_per_frame REAL,
    boards TEXT NOT NULL,
    estimated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS plans (
    plan_id INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    reason TEXT NOT NULL,
    assignments TEXT NOT NULL,
    unplaced TEXT NOT NULL
);
"""


def _add_camera_column(conn: sqlite3.Connection) -> None:
    """A log written before predictions named their camera gets the column (its rows were all camera cam0)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
    if "camera" not in columns:
        conn.execute("ALTER TABLE predictions ADD COLUMN camera TEXT NOT NULL DEFAULT 'cam0'")


class PredictionLogError(UserError):
    """The log file cannot be opened."""


class PredictionLog:
    def __init__(self, path: Path, commit_interval: float = 0.5, max_queue: int = 50000) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            _add_camera_column(conn)
            conn.commit()
            conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise PredictionLogError(
                f"cannot open prediction log {self.path} ({exc}); choose another --log path"
            ) from exc
        self.commit_interval = commit_interval
        self._queue: queue.Queue[tuple[str, tuple[Any, ...]] | None] = queue.Queue(max_queue)
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._writer, name="prediction-log", daemon=True)
        self._thread.start()

    def add_prediction(self, p: dict[str, Any]) -> None:
        row = (
            p["frame_id"],
            p["capture_ns"],
            p["fused_ns"],
            p["class_id"],
            p["class_name"],
            p["score"],
            p.get("label"),
            int(p["degraded"]),
            json.dumps(p["missing_parts"]),
            json.dumps(p["parts"]),
            p["fusion_ms"],
            p["camera"],
        )
        self._put("INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def add_power(self, board: str, received_ns: int, snap: dict[str, Any]) -> None:
        row = (
            board,
            received_ns,
            snap.get("ts"),
            snap.get("watts"),
            snap.get("joules"),
            snap.get("frames"),
            snap.get("source"),
            int(bool(snap.get("estimated"))),
        )
        self._put("INSERT INTO power VALUES (?,?,?,?,?,?,?,?)", row)

    def add_fleet_power(self, received_ns: int, report: dict[str, Any], fused_frames: int) -> None:
        """One row per stats tick: fleet watts (boards that reported recently), joules since each board
        was first seen, and mJ per fused frame; `boards` lists who was counted."""
        counted = [b["board"] for b in report["boards"] if not b["stale"]]
        row = (
            received_ns,
            report["fleet_watts"],
            report["fleet_joules"],
            fused_frames,
            report["mj_per_frame"],
            json.dumps(counted),
            int(bool(report["estimated"])),
        )
        self._put("INSERT INTO fleet_power VALUES (?,?,?,?,?,?,?)", row)

    def add_plan(self, plan: dict[str, Any]) -> None:
        """One row per published plan (agent/fleet_plan_message.py); predictions fused after `created_ns` ran
        under it (a moved part counts once its new host delivers)."""
        row = (
            plan["plan_id"],
            plan["created_ns"],
            plan["reason"],
            json.dumps(plan["assignments"]),
            json.dumps(plan["unplaced"]),
        )
        self._put("INSERT INTO plans VALUES (?,?,?,?,?)", row)

    def _put(self, sql: str, row: tuple[Any, ...]) -> None:
        try:
            self._queue.put_nowait((sql, row))
        except queue.Full:
            self.dropped += 1

    def _writer(self) -> None:
        conn = sqlite3.connect(self.path)
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        done = False
        while not done:
            batch: list[tuple[str, tuple[Any, ...]]] = []
            try:
                item = self._queue.get(timeout=self.commit_interval)
                while True:
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if batch:
                try:
                    for sql, row in batch:
                        conn.execute(sql, row)
                    conn.commit()
                    self.written += len(batch)
                except sqlite3.Error as exc:
                    log.error("prediction log write failed (%s); %d rows lost", exc, len(batch))
                    self.dropped += len(batch)
        conn.close()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


def read_predictions(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM predictions ORDER BY rowid").fetchall()
    finally:
        conn.close()
    out = []
    for r in rows:
        d = dict(r)
        d["missing_parts"] = json.loads(d["missing_parts"])
        d["parts"] = json.loads(d["parts"])
        d["degraded"] = bool(d["degraded"])
        out.append(d)
    return out


def read_power(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-board rows, fleet rows) of a prediction log, oldest first."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        boards = [dict(r) for r in conn.execute("SELECT * FROM power ORDER BY rowid")]
        fleet = [dict(r) for r in conn.execute("SELECT * FROM fleet_power ORDER BY rowid")]
    finally:
        conn.close()
    for r in boards:
        r["estimated"] = bool(r["estimated"])
    for r in fleet:
        r["boards"] = json.loads(r["boards"])
        r["estimated"] = bool(r["estimated"])
    return boards, fleet


def read_plans(path: Path) -> list[dict[str, Any]]:
    """Every plan of a prediction log, oldest first (assignments and unplaced parsed)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM plans ORDER BY rowid")]
    finally:
        conn.close()
    for r in rows:
        r["assignments"] = json.loads(r["assignments"])
        r["unplaced"] = json.loads(r["unplaced"])
    return rows
