"""A board's link shaped like a LAN or Wi-Fi: rate, one-way delay ± jitter, loss -- and a record of what did which.

Profiles: `lan` 100 Mbit/s, 1 ms ± 0.3 ms; `wifi` 30 Mbit/s, 4 ms ± 2 ms, 0.1 % loss; `none`. Each direction of the
veth gets the delay, as netem on both ends of the pair would apply it.

Where the kernel has sch_netem, netem applies the whole profile on both ends. This kernel has none ("Specified
qdisc kind is unknown"), nor tc classifiers or iptables, only tbf/htb/fifo qdiscs. Then:
  rate          tbf on both ends of the veth (kernel)
  delay, jitter the delaying TCP relay (lab/relay.py) on the host end: the board's agent connects to it instead of
                to the broker, and every chunk waits delay ± jitter, in order (userspace, measured and reported)
  loss          no packet can be dropped; the relay holds a chunk back for one retransmission time with the loss
                probability per segment -- the effect of a loss on TCP, *modelled*, and reported as such
Every result carries `parts`: for each of rate/delay/jitter/loss what was asked, what applied it, and whether it was
applied in the kernel, in userspace, only modelled, or not at all.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vitfleet.lab.errors import LabError
from vitfleet.lab.netns import BoardLink, _run

TBF_LATENCY_MS = 100  # tbf's queue: what waits longer than this behind the rate is dropped (TCP resends)
MTU_BYTES = 1514


class LinkProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    rate_mbit: float | None = None
    delay_ms: float = 0.0  # one way, each direction
    jitter_ms: float = 0.0  # uniform ± around delay_ms
    loss_pct: float = 0.0  # per packet (per segment), each direction


PROFILES: dict[str, LinkProfile] = {
    "lan": LinkProfile(name="lan", rate_mbit=100, delay_ms=1.0, jitter_ms=0.3),
    "wifi": LinkProfile(name="wifi", rate_mbit=30, delay_ms=4.0, jitter_ms=2.0, loss_pct=0.1),
    "none": LinkProfile(name="none"),
}


def link_profile(name: str) -> LinkProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise LabError(f"unknown link profile {name!r}; use one of: {', '.join(PROFILES)}") from None


Applied = Literal["kernel", "userspace", "modelled", "not applied", "not asked"]


@dataclass(frozen=True)
class ShapingPart:
    what: Literal["rate", "delay", "jitter", "loss"]
    asked: str
    applied: Applied
    mechanism: str


@dataclass
class ShapingRecord:
    """What a board's link got, part by part (never claims more than was applied)."""

    board: str
    profile: LinkProfile
    parts: list[ShapingPart] = field(default_factory=list)
    endpoint: str = ""  # HOST:PORT the board's agent connects to
    relay: dict | None = None  # the relay's measured hold times, when one ran

    def as_dict(self) -> dict:
        return {
            "board": self.board,
            "profile": self.profile.model_dump(),
            "endpoint": self.endpoint,
            "parts": [asdict(p) for p in self.parts],
            "relay": self.relay,
        }


@lru_cache(maxsize=1)
def kernel_has_netem() -> bool:
    """Probe once in a throw-away namespace (a qdisc on a live link would disturb it)."""
    ns = "vitfleet-lab-netem-probe"
    _run(["ip", "netns", "add", ns])
    try:
        done = _run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
        return done.returncode == 0
    finally:
        _run(["ip", "netns", "del", ns])


def _tc(argv: list[str], what: str) -> None:
    done = _run(argv)
    if done.returncode != 0:
        raise LabError(
            f"could not shape the link ({what}: `{' '.join(argv)}`: {done.stderr.strip()}); "
            "check that tc (iproute2) and the qdisc exist on this kernel, or use --link none"
        )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _fmt(x: float) -> str:
    return f"{x:g}"


class ShapedLink:
    """Shape one BoardLink for a broker on this host at `broker_port` (127.0.0.1 and the link's host address)."""

    def __init__(
        self, link: BoardLink, profile: LinkProfile, broker_port: int, work_dir: Path, python: str = sys.executable
    ) -> None:
        self.link, self.profile, self.broker_port, self.work_dir = link, profile, broker_port, work_dir
        self.python = python
        self.relay: subprocess.Popen[bytes] | None = None
        self.record = ShapingRecord(link.board, profile)
        self._stats_path = work_dir / f"relay-{link.board}.json"

    def __enter__(self) -> ShapedLink:
        return self.apply()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    @property
    def _ends(self) -> list[list[str]]:
        """`tc` argv prefixes for both ends: the board's (inside its namespace) and the host's."""
        return [
            self.link.exec_argv(["tc"]) + ["qdisc", "replace", "dev", self.link.board_if, "root"],
            ["tc", "qdisc", "replace", "dev", self.link.host_if, "root"],
        ]

    def apply(self) -> ShapedLink:
        p, rec = self.profile, self.record
        self.work_dir.mkdir(parents=True, exist_ok=True)
        rec.endpoint = f"{self.link.host_addr}:{self.broker_port}"
        asked = {
            "rate": f"{_fmt(p.rate_mbit)} Mbit/s" if p.rate_mbit else "",
            "delay": f"{_fmt(p.delay_ms)} ms" if p.delay_ms else "",
            "jitter": f"± {_fmt(p.jitter_ms)} ms" if p.jitter_ms else "",
            "loss": f"{_fmt(p.loss_pct)} %" if p.loss_pct else "",
        }
        if not any(asked.values()):
            rec.parts = [ShapingPart(w, "", "not asked", "-") for w in asked]  # type: ignore[arg-type]
            return self
        if kernel_has_netem():
            netem = ["netem"]
            if p.delay_ms or p.jitter_ms:
                netem += ["delay", f"{p.delay_ms}ms", f"{p.jitter_ms}ms"]
            if p.loss_pct:
                netem += ["loss", f"{p.loss_pct}%"]
            if p.rate_mbit:
                netem += ["rate", f"{p.rate_mbit}mbit"]
            for end in self._ends:
                _tc(end + netem, "netem")
            how = f"netem on {self.link.board_if} and {self.link.host_if} (kernel)"
            rec.parts = [
                ShapingPart(w, a, "kernel" if a else "not asked", how if a else "-")  # type: ignore[arg-type]
                for w, a in asked.items()
            ]
            return self
        parts: list[ShapingPart] = []
        if p.rate_mbit:
            burst = 2 * MTU_BYTES  # small: a frame leaves at the link's rate, not in one burst
            for end in self._ends:
                _tc(
                    end + ["tbf", "rate", f"{p.rate_mbit}mbit", "burst", str(burst), "latency", f"{TBF_LATENCY_MS}ms"],
                    "tbf",
                )
            parts.append(
                ShapingPart(
                    "rate",
                    asked["rate"],
                    "kernel",
                    f"tbf on {self.link.board_if} and {self.link.host_if} (kernel; no sch_netem)",
                )
            )
        else:
            parts.append(ShapingPart("rate", "", "not asked", "-"))
        if p.delay_ms or p.jitter_ms or p.loss_pct:
            self._start_relay()
            relay = (
                f"delaying TCP relay on {self.record.endpoint} (lab/relay.py; userspace, each direction, in "
                "order; no sch_netem)"
            )
            parts.append(ShapingPart("delay", asked["delay"], "userspace" if p.delay_ms else "not asked", relay))
            parts.append(
                ShapingPart("jitter", asked["jitter"], "userspace" if p.jitter_ms else "not asked", relay + ", uniform")
            )
            parts.append(
                ShapingPart(
                    "loss",
                    asked["loss"],
                    "modelled" if p.loss_pct else "not asked",
                    "no packet dropped (no netem, tc classifiers or iptables here): the relay holds "
                    "a chunk back 200 ms with the per-segment loss probability, the effect of a loss "
                    "on TCP"
                    if p.loss_pct
                    else "-",
                )
            )
        rec.parts = parts
        return self

    def _start_relay(self) -> None:
        p = self.profile
        port = _free_port(self.link.host_addr)
        ready = self.work_dir / f"relay-{self.link.board}.ready"
        ready.unlink(missing_ok=True)
        self._stats_path.unlink(missing_ok=True)
        log = open(self.work_dir / f"relay-{self.link.board}.log", "wb")
        self.relay = subprocess.Popen(
            [
                self.python,
                "-m",
                "vitfleet.lab.relay",
                "--listen",
                f"{self.link.host_addr}:{port}",
                "--target",
                f"127.0.0.1:{self.broker_port}",
                "--delay-ms",
                str(p.delay_ms),
                "--jitter-ms",
                str(p.jitter_ms),
                "--loss-pct",
                str(p.loss_pct),
                "--seed",
                str(self.link.index),
                "--stats",
                str(self._stats_path),
                "--ready",
                str(ready),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 20
        while not ready.exists():
            if self.relay.poll() is not None or time.monotonic() > deadline:
                tail = (self.work_dir / f"relay-{self.link.board}.log").read_text(errors="replace")[-300:]
                self._stop_relay()
                raise LabError(
                    f"the link relay of board {self.link.board} did not start ({tail.strip() or 'no output'})"
                    "; check that the board's link is up (BoardLink.up())"
                )
            time.sleep(0.02)
        self.record.endpoint = f"{self.link.host_addr}:{port}"

    def _stop_relay(self) -> None:
        if self.relay is None:
            return
        if self.relay.poll() is None:
            self.relay.send_signal(signal.SIGTERM)
            try:
                self.relay.wait(10)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                self.relay.wait()
        self.relay = None
        if self._stats_path.exists():
            self.record.relay = json.loads(self._stats_path.read_text())

    def remove(self) -> None:
        """Stop the relay (its measured hold times go into the record) and take the qdiscs off both ends."""
        self._stop_relay()
        _run(self.link.exec_argv(["tc", "qdisc", "del", "dev", self.link.board_if, "root"]))
        _run(["tc", "qdisc", "del", "dev", self.link.host_if, "root"])
