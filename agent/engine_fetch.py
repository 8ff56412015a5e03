"""Get a part's engine onto this board: use the local file when it matches the manifest, else fetch it from the
coordinator's engine server and check its sha256 against this board's manifest before writing it.

The check uses the manifest the board already has (deployed with its engines), never anything the server
sends: a corrupted, truncated or foreign file is refused, nothing is written, and the agent keeps running the
parts it has (the fleet stays degraded, not down). A file is written under a temporary name and renamed, so a
crash mid-write never leaves a half engine that looks complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import MANIFEST_NAME, EngineEntry, read_manifest, verified_path
from vitfleet.file_digest import sha256_bytes

log = logging.getLogger("vitfleet.agent")

FETCH_TIMEOUT_S = 30.0


class EngineFetchError(EngineError):
    """A part's engine is not here and could not be fetched, or the fetched bytes are not the manifest's."""


def ensure_local(engines_dir: Path, entry: EngineEntry, engines_url: str | None) -> Path:
    """The verified local path of `entry`, fetching it from `engines_url` first when it is missing or wrong."""
    try:
        return verified_path(engines_dir, entry)
    except EngineError as local_problem:
        if engines_url is None:
            raise EngineFetchError(
                f"{local_problem}; and the plan names no engine server to fetch it from (set "
                "aggregator.serve_engines: true, or ship every engine to every board)"
            ) from None
    data = _download(engines_url + entry.file, entry)
    if len(data) != entry.size or sha256_bytes(data) != entry.sha256:
        raise EngineFetchError(
            f"{entry.label}: the fetched file ({len(data)} bytes, sha256 "
            f"{sha256_bytes(data)[:12]}…) is not the manifest's ({entry.size} bytes, "
            f"{entry.sha256[:12]}…); refused: the coordinator's engines folder is damaged or "
            "from another build, rebuild or recopy it"
        )
    target = Path(engines_dir) / entry.file
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EngineFetchError(
            f"{entry.label}: cannot write {target} ({exc.strerror}); make the engines folder writable by the agent"
        ) from None
    log.info("fetched %s from %s (%d bytes, sha256 ok)", entry.file, engines_url, len(data))
    return verified_path(engines_dir, entry)


def _download(url: str, entry: EngineEntry) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 - http only, our URL
            # Read at most one byte more than expected: a bigger answer is refused without buffering all of it.
            return response.read(entry.size + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EngineFetchError(
            f"{entry.label}: cannot fetch {url} ({reason}); is the aggregator running and reachable from this board?"
        ) from None


def copy_part_engines(engines_dir: Path, dest: Path, parts: list[int]) -> Path:
    """A board's engines folder as deploy ships it: the whole manifest, but only `parts`' engine files (the
    others are fetched when a plan hands them over). Used to run one-machine fleets like real boards."""
    manifest = read_manifest(engines_dir)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(engines_dir) / MANIFEST_NAME, dest / MANIFEST_NAME)
    for entry in manifest.entries:
        if entry.role == "part" and entry.part in parts:
            shutil.copy(Path(engines_dir) / entry.file, dest / entry.file)
    return dest
