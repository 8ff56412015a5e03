"""Reading the kit's JSON cards (teacher.json, bundle.json, manifest.json): one loader, one set of messages.

Each card carries `format_version`; a card from another version, a file that is not JSON, or one that fails
its pydantic model is refused with a sentence naming the file, what is wrong and the command that re-creates it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

Card = TypeVar("Card", bound=BaseModel)


def read_versioned_card(
    path: Path, model: type[Card], version: int, error: type[Exception], what: str, missing_hint: str, remedy: str
) -> Card:
    """`what` names the card in messages ("bundle", "manifest", "teacher card"); `missing_hint` says how to
    create a missing one; `remedy` how to re-create a bad one."""
    if not path.exists():
        raise error(f"{path} not found; {missing_hint}")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc}); the {what} is corrupt, {remedy}") from exc
    found = raw.get("format_version") if isinstance(raw, dict) else None
    if found != version:
        raise error(
            f"{path} is {what} format {found!r} but this vitfleet reads format {version}; {remedy} "
            "with this version of vitfleet"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise error(
            f"{path}: field {'.'.join(map(str, first['loc']))}: {first['msg']}; the {what} is corrupt "
            f"or hand-edited, {remedy}"
        ) from exc
