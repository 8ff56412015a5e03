"""A delaying TCP relay: the link delay and jitter of a board whose kernel has no sch_netem.

`python -m vitfleet.lab.relay --listen 10.231.7.1:18830 --target 127.0.0.1:1883 --delay-ms 1 --jitter-ms 0.3`
listens on the host end of a board's veth; the board's agent connects here instead of to the broker. Every chunk
read from either side is written to the other side `delay ± jitter` ms (uniform) after it arrived, in order (a
chunk never overtakes the one before it, as bytes on a TCP stream cannot), i.e. one-way delay in each direction, as
netem on both ends of the veth would apply it. The relay's own sockets are TCP_NODELAY (MQTT's small messages).

Loss cannot be made real here (no netem, no tc classifiers, no iptables): with `--loss-pct`, a chunk of n segments
is instead held back with probability 1 - (1 - p)^n for one retransmission time (`--retransmit-ms`, 200 ms: Linux's
minimum RTO, also what a tail-loss probe waits for a lone segment behind a delayed ACK) -- the *effect* of a lost
segment on a TCP stream, modelled, not a dropped packet. Results say so.

On SIGTERM the relay writes what it applied (measured hold times per direction, chunks, bytes, modelled losses) to
`--stats FILE` and exits.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

SEGMENT_BYTES = 1448  # TCP payload per segment on a 1500-byte MTU (timestamps on)


@dataclass
class DirectionStats:
    chunks: int = 0
    bytes: int = 0
    modelled_losses: int = 0
    held_ms: list[float] = field(default_factory=list)  # actual hold per chunk (arrival -> written), ms

    def summary(self) -> dict[str, float | int | None]:
        held = sorted(self.held_ms)

        def pct(q: float) -> float | None:
            return round(held[min(len(held) - 1, int(q * len(held)))], 3) if held else None

        return {
            "chunks": self.chunks,
            "bytes": self.bytes,
            "modelled_losses": self.modelled_losses,
            "held_p50_ms": pct(0.5),
            "held_p99_ms": pct(0.99),
            "held_min_ms": pct(0.0),
        }


@dataclass(frozen=True)
class Delay:
    delay_ms: float
    jitter_ms: float
    loss_pct: float
    retransmit_ms: float

    def hold_s(self, rng: random.Random, nbytes: int) -> tuple[float, bool]:
        hold = self.delay_ms + (rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0)
        lost = False
        if self.loss_pct > 0:
            segments = max(1, math.ceil(nbytes / SEGMENT_BYTES))
            lost = rng.random() < 1 - (1 - self.loss_pct / 100) ** segments
            hold += self.retransmit_ms if lost else 0.0
        return max(0.0, hold) / 1e3, lost


class Connection:
    """Both directions of one relayed connection: the sockets are closed once both directions have ended."""

    def __init__(self, board_side: socket.socket, broker_side: socket.socket) -> None:
        self.sockets = (board_side, broker_side)
        self.closed = threading.Event()  # set on a socket error: both directions stop
        self._open = 2
        self._lock = threading.Lock()

    def direction_done(self) -> None:
        with self._lock:
            self._open -= 1
            last = self._open == 0
        if last:
            for s in self.sockets:
                s.close()


class Pipe:
    """One direction of one connection: a reader thread stamps chunks, a writer thread releases them on time."""

    def __init__(
        self,
        src: socket.socket,
        dst: socket.socket,
        delay: Delay,
        stats: DirectionStats,
        rng: random.Random,
        conn: Connection,
    ) -> None:
        self.src, self.dst, self.delay, self.stats, self.rng = src, dst, delay, stats, rng
        self.conn, self.closed = conn, conn.closed
        self.queue: deque[tuple[float, float, bytes]] = deque()
        self.ready = threading.Condition()
        self.eof = False

    def start(self) -> None:
        for target in (self._read, self._write):
            threading.Thread(target=target, daemon=True).start()

    def _read(self) -> None:
        last_due = 0.0
        try:
            while not self.closed.is_set():
                chunk = self.src.recv(65536)
                if not chunk:
                    break
                now = time.perf_counter()
                hold, lost = self.delay.hold_s(self.rng, len(chunk))
                due = max(last_due, now + hold)  # in order: never before the chunk ahead of it
                last_due = due
                self.stats.modelled_losses += lost
                with self.ready:
                    self.queue.append((now, due, chunk))
                    self.ready.notify()
        except OSError:
            pass
        with self.ready:
            self.eof = True
            self.ready.notify()

    def _write(self) -> None:
        failed = False
        try:
            while True:
                with self.ready:
                    while not self.queue and not self.eof:
                        self.ready.wait(0.5)
                    if not self.queue:
                        break
                    arrived, due, chunk = self.queue.popleft()
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                self.dst.sendall(chunk)
                self.stats.chunks += 1
                self.stats.bytes += len(chunk)
                self.stats.held_ms.append((time.perf_counter() - arrived) * 1e3)
        except OSError:
            failed = True
        # The source said goodbye: pass the half-close on, as TCP would (the other direction may still talk).
        # A failed socket ends the connection both ways.
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            failed = True
        if failed:
            self.closed.set()
            for s in (self.src, self.dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.conn.direction_done()


def _nodelay(s: socket.socket) -> socket.socket:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def serve(
    listen: tuple[str, int],
    target: tuple[str, int],
    delay: Delay,
    seed: int,
    stop: threading.Event,
    ready: Path | None = None,
) -> dict[str, DirectionStats]:
    """Relay every connection to `listen` until `stop`; per-direction stats ("to_board", "from_board").
    `ready` is written once the relay listens (the launcher waits for it instead of probing the port)."""
    rng = random.Random(seed)
    stats = {"to_board": DirectionStats(), "from_board": DirectionStats()}
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(listen)
    server.listen(16)
    server.settimeout(0.2)
    if ready is not None:
        ready.write_text("listening")
    while not stop.is_set():
        try:
            board_side, _ = server.accept()
        except TimeoutError:
            continue
        try:
            broker_side = socket.create_connection(target, timeout=5)
        except OSError:
            board_side.close()
            continue
        broker_side.settimeout(None)
        conn = Connection(_nodelay(board_side), _nodelay(broker_side))
        Pipe(board_side, broker_side, delay, stats["from_board"], rng, conn).start()
        Pipe(broker_side, board_side, delay, stats["to_board"], rng, conn).start()
    server.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitfleet.lab.relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT the board connects to")
    parser.add_argument("--target", required=True, help="HOST:PORT of the broker")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss-pct", type=float, default=0.0)
    parser.add_argument("--retransmit-ms", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stats", type=Path, default=None, help="write what was applied here on exit")
    parser.add_argument("--ready", type=Path, default=None, help="written once the relay listens")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    delay = Delay(args.delay_ms, args.jitter_ms, args.loss_pct, args.retransmit_ms)
    stats = serve(_addr(args.listen), _addr(args.target), delay, args.seed, stop, args.ready)
    if args.stats:
        args.stats.write_text(json.dumps({k: v.summary() for k, v in stats.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
