"""Reading one integer from a sysfs attribute file, with errors that name the file and the fix."""

from __future__ import annotations

from pathlib import Path

from vitfleet.power.meter import MeterReadError


def read_sysfs_int(path: Path, what: str) -> int:
    """sysfs attributes hold one decimal integer and a newline; anything else is a MeterReadError."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise MeterReadError(f"{path} is missing ({what}); the driver was unloaded or the device went away") from None
    except PermissionError:
        raise MeterReadError(
            f"{path} is not readable by this user ({what}); run as root or grant read access"
        ) from None
    except OSError as exc:
        raise MeterReadError(f"{path} could not be read ({what}): {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MeterReadError(f"{path} holds binary data, not a number ({what})") from None
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        raise MeterReadError(f"{path} should hold an integer ({what}) but holds {stripped[:40]!r}") from None


def read_sysfs_text(path: Path) -> str | None:
    """A label or name attribute, stripped; None when absent or unreadable (labels are optional)."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
