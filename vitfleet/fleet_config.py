"""fleet.yaml: the one file that describes a fleet (pydantic, unknown keys refused).

One model per concern (broker, board, camera, aggregator), Frigate-style. Secrets
never live in this file: passwords come from an environment variable or a file path.
`vitfleet demo` builds a FleetConfig in code, with no file at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from vitfleet.board_kinds import SPEED_UNIT, Role, board_kind, known_board_kind
from vitfleet.choices import EncodingName, PrecisionName
from vitfleet.errors import UserError

# A registered board kind's name (vitfleet/board_kinds.py): kinds registered by plugins are valid too, and an
# unknown one is refused with the list of kinds.
BoardKind = Annotated[str, AfterValidator(known_board_kind)]

__all__ = ["BoardKind", "PrecisionName", "Role"]  # re-exported: the fleet file's own vocabulary


class FleetConfigError(UserError):
    """fleet.yaml is missing, malformed or names an unknown key; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsConfig(_Strict):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    require_client_cert: bool = Field(
        False, description="broker refuses clients without a certificate from the fleet CA (deploy ships one per board)"
    )


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    tls: TlsConfig | None = None
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    password_file: Path | None = Field(None, description="file holding the password (mode 600)")
    keepalive: int = Field(15, ge=1)

    def password(self) -> str | None:
        """Resolve the secret at connect time; it is never stored in the config object or logged."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise FleetConfigError(
                    f"broker.password_env names ${self.password_env}, which is not set; "
                    "export it or use broker.password_file"
                )
            return value
        if self.password_file:
            try:
                return self.password_file.read_text().strip()
            except OSError as exc:
                raise FleetConfigError(
                    f"broker.password_file {self.password_file} cannot be read ({exc.strerror})"
                ) from exc
        return None


class BoardConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    host: str = "127.0.0.1"
    kind: BoardKind = "cpu"
    memory_mb: int = Field(1024, gt=0)
    speed: float | None = Field(
        None,
        gt=0,
        description=f"{SPEED_UNIT} of `vitfleet deploy profile`'s benchmark; "
        "a measured figure (<fleet>.speeds.json) replaces it when "
        "the file is loaded; default: the kind's typical figure",
    )
    roles: list[Role] = ["agent"]
    part: int | None = Field(None, ge=0, description="fixed part index; planned automatically when omitted")
    precision: PrecisionName | None = None
    ssh_user: str = "vitfleet"
    ssh_port: int = Field(22, ge=1, le=65535)
    install_dir: str = "/opt/vitfleet"
    threads: int = Field(1, ge=1)
    python: str | None = Field(
        None,
        description="deploy: run services with this interpreter instead of creating "
        "<install_dir>/venv (a board provisioned by other means)",
    )
    service_manager: Literal["auto", "systemd", "process"] = Field(
        "auto", description="deploy: systemd units, or the process runner where systemd is not running"
    )
    offline: bool = Field(
        False,
        description="deploy: the board reaches no package index; deploy downloads the "
        "board group's wheels for its kind's arch and Python here and ships "
        "them (pip --no-index on the board)",
    )

    @model_validator(mode="after")
    def _default_speed(self) -> BoardConfig:
        # One unit for every board: an unprofiled board gets its kind's typical GFLOP/s, never a unitless 1.0
        # that placement would compare with a measured figure.
        if self.speed is None:
            self.speed = board_kind(self.kind).typical_gflops
        return self

    @property
    def gflops(self) -> float:
        """The board's speed in GFLOP/s (always set once validated)."""
        assert self.speed is not None
        return self.speed

    def engine_precision(self) -> PrecisionName:
        return self.precision or board_kind(self.kind).precision


class SshConfig(_Strict):
    """How deploy logs in to the boards (relative paths are relative to the fleet file); the command line's
    --ssh-key / --known-hosts win over it."""

    key: Path | None = Field(None, description="private key deploy logs in with (default: ssh's own choice)")
    known_hosts: Path | None = Field(None, description="known_hosts file to check the boards' host keys against")


class CameraConfig(_Strict):
    uri: str = "dataset://fashion-mnist/test"
    fps: float = Field(10.0, gt=0)
    loop: bool = True
    encoding: EncodingName = "raw"
    max_in_flight: int = Field(
        2,
        ge=1,
        description="admission credits: frames the fleet computes at once; frames "
        "that find none free are skipped by every board alike",
    )


CAMERA_NAME = r"^[A-Za-z0-9_-]{1,40}$"
DEFAULT_CAMERA = "cam0"
MAX_CAMERAS = 1024


class CameraFeedConfig(_Strict):
    """One of several cameras on one fleet (fleet.yaml `cameras:`); unset fields come from `camera:`."""

    name: str = Field(
        pattern=CAMERA_NAME,
        description="the camera's name: its predictions topic "
        "predictions/<name>, log column, web tile and Home Assistant "
        "entity",
    )
    uri: str
    fps: float | None = Field(None, gt=0, description="frames per second to read (default: camera.fps)")
    weight: float = Field(
        1.0,
        gt=0,
        description="its share of what the fleet computes, relative to the other "
        "cameras' weights (2 = twice the frames of a weight-1 camera "
        "when both offer more than the fleet can take)",
    )
    loop: bool | None = None
    encoding: EncodingName | None = None


class AggregatorConfig(_Strict):
    deadline_ms: float | None = Field(
        None, gt=0, description="fuse what arrived after this; default from measured part latency"
    )
    max_pending: int = Field(256, gt=0)
    log: Path = Path("runs/fleet-log.sqlite")
    heal_after_s: float | None = Field(
        2.0,
        gt=0,
        description="self-healing: a board offline this long has its "
        "parts moved to the survivors (the aggregator "
        "publishes a new fleet plan); null: never move parts",
    )
    engine_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="port of the aggregator's engine server, from which "
        "agents fetch parts they must take over (0: a free "
        "port, announced in the plan)",
    )
    serve_engines: bool = Field(
        True,
        description="serve part engines to agents over HTTP (sha256-checked by the "
        "agent); false when deploy ships every engine to every board",
    )
    replan_hold_s: float | None = Field(
        5.0,
        gt=0,
        description="a board whose measured speed changed (throttling, "
        "a busy neighbour) for this long is re-planned: parts "
        "move when that shortens the critical path by more than "
        "10 %; null: parts move only for lost boards",
    )
    adopt: bool = Field(
        False,
        description="give parts to agent boards the fleet file does not name once they "
        "announce themselves (their hello), by the same placement rule",
    )


class FleetConfig(_Strict):
    name: str = Field("demo", pattern=r"^[A-Za-z0-9_-]+$", description="topic namespace vitfleet/<name>/")
    bundle: Path = Path("runs/bundle")
    engines: Path = Field(
        Path("runs/engines"),
        description="the engines folder agents and the aggregator load (its "
        "manifest.json); deploy points it at each board's copy",
    )
    engine_builds: Path | None = Field(
        None,
        description="deploy only: the folder under which deploy builds one "
        "<target>-<precision>/ engines folder per board kind; "
        "default: engine-builds/ beside `engines`",
    )
    broker: BrokerConfig = BrokerConfig()
    ssh: SshConfig = SshConfig()
    boards: list[BoardConfig] = Field(min_length=1)
    camera: CameraConfig = CameraConfig()
    cameras: list[CameraFeedConfig] = Field(
        default_factory=list,
        max_length=MAX_CAMERAS,
        description="several cameras on the fleet, each with its weighted share (default: the one `camera:`)",
    )
    aggregator: AggregatorConfig = AggregatorConfig()
    homeassistant: bool = Field(
        False,
        description="publish Home Assistant MQTT discovery configs (retained, under "
        "homeassistant/): prediction, each board's availability, fps, watts",
    )

    @model_validator(mode="after")
    def _check_roles(self) -> FleetConfig:
        names = [b.name for b in self.boards]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            named = (
                f"board name {dupes[0]!r} appears"
                if len(dupes) == 1
                else f"board names {', '.join(repr(n) for n in dupes)} appear"
            )
            raise ValueError(
                f"{named} more than once in 'boards'; give every board its own name (it is the board's MQTT identity)"
            )
        cams = [c.name for c in self.cameras]
        twice = sorted({n for n in cams if cams.count(n) > 1})
        if twice:
            raise ValueError(
                f"camera name {twice[0]!r} appears more than once in 'cameras'; give every camera its "
                "own name (it names its predictions topic)"
            )
        for role in ("aggregator", "camera"):
            holders = [b.name for b in self.boards if role in b.roles]
            if len(holders) > 1:
                raise ValueError(
                    f"only one board may have role {role!r}, found {', '.join(holders)}; remove "
                    f"{role!r} from the roles of all but one"
                )
        return self

    def camera_feeds(self) -> list[CameraFeedConfig]:
        """Every camera of the fleet with the `camera:` defaults filled in; its index is its id on the wire."""
        base = self.camera
        feeds = self.cameras or [CameraFeedConfig(name=DEFAULT_CAMERA, uri=base.uri)]
        return [
            c.model_copy(
                update={
                    "fps": base.fps if c.fps is None else c.fps,
                    "loop": base.loop if c.loop is None else c.loop,
                    "encoding": base.encoding if c.encoding is None else c.encoding,
                }
            )
            for c in feeds
        ]

    def camera_names(self) -> list[str]:
        return [c.name for c in self.camera_feeds()]

    def board(self, name: str) -> BoardConfig:
        for b in self.boards:
            if b.name == name:
                return b
        raise FleetConfigError(
            f"no board named {name!r} in the fleet; boards are: {', '.join(b.name for b in self.boards)}"
        )

    def boards_with(self, role: Role) -> list[BoardConfig]:
        return [b for b in self.boards if role in b.roles]


def describe_validation_error(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}'; remove it or fix its spelling"
    if first["type"] == "value_error" and "error" in first.get("ctx", {}):
        # A validator's own sentence: no "Value error," prefix and no dump of the (possibly whole) input.
        where = f"key '{key}': " if first["loc"] else ""
        return f"{source}: {where}{first['ctx']['error']}"
    return f"{source}: key '{key}': {first['msg']} (got {first.get('input')!r})"


def parse_fleet(data: object, source: str = "fleet config") -> FleetConfig:
    if not isinstance(data, dict):
        raise FleetConfigError(f"{source} must be a YAML mapping with a 'boards' list, got {type(data).__name__}")
    try:
        return FleetConfig.model_validate(data)
    except ValidationError as exc:
        raise FleetConfigError(describe_validation_error(exc, source)) from None


def load_fleet(path: Path) -> FleetConfig:
    if not path.exists():
        raise FleetConfigError(f"fleet file {path} does not exist; copy docs/fleet.example.yaml and edit it")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise FleetConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    fleet = parse_fleet(data, str(path))
    base = path.parent
    # Relative paths in the file are relative to the file, not to the caller's directory.
    fleet.bundle = fleet.bundle if fleet.bundle.is_absolute() else base / fleet.bundle
    fleet.engines = fleet.engines if fleet.engines.is_absolute() else base / fleet.engines
    if fleet.engine_builds is not None and not fleet.engine_builds.is_absolute():
        fleet.engine_builds = base / fleet.engine_builds
    for key in ("key", "known_hosts"):
        value = getattr(fleet.ssh, key)
        if value is not None:
            value = value.expanduser()
            setattr(fleet.ssh, key, value if value.is_absolute() else base / value)
    return apply_measured_speeds(fleet, speeds_path(path))


def speeds_path(fleet_file: Path) -> Path:
    """Where `vitfleet deploy profile` keeps measured speeds: <fleet>.speeds.json beside the fleet file (which
    stays hand-written)."""
    return fleet_file.with_name(fleet_file.stem + ".speeds.json")


def read_speeds(path: Path) -> dict[str, dict[str, float]]:
    """board -> {"speed": GFLOP/s, "measured_at": epoch s}; {} when nothing was measured."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FleetConfigError(f"{path} is not valid JSON ({exc}); delete it and run vitfleet deploy profile") from None
    ok = isinstance(data, dict) and all(
        isinstance(v, dict)
        and isinstance(v.get("speed"), (int, float))
        and not isinstance(v.get("speed"), bool)
        and v["speed"] > 0
        for v in data.values()
    )
    if not ok:
        raise FleetConfigError(
            f'{path} should map board names to {{"speed": GFLOP/s}}; delete it and re-run vitfleet deploy profile'
        )
    return data


def apply_measured_speeds(fleet: FleetConfig, path: Path) -> FleetConfig:
    """Measured speeds (GFLOP/s) in place of the configured or typical ones, for every reader of the fleet file
    (decompose's sizing, deploy's placement, the agents' coordinator) alike."""
    measured = read_speeds(path)
    for board in fleet.boards:
        if board.name in measured:
            board.speed = float(measured[board.name]["speed"])
    return fleet
