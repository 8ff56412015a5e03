"""Weights on disk: safetensors only (never pickles), with a JSON card beside them.

Loading checks every tensor name and shape against the architecture the card
describes, so a corrupted, truncated or foreign file fails with a message that says
what does not match instead of a half-loaded model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from vitfleet.errors import UserError


class CheckpointError(UserError):
    """A weights file is missing, corrupt or belongs to another model; the message says which."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def save_weights(model: nn.Module, path: Path) -> str:
    """Write the state dict as safetensors atomically; returns the file's sha256."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp))
    tmp.replace(path)
    return sha256_file(path)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.exists():
        raise CheckpointError(f"weights file {path} does not exist; re-run the step that writes it")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); it is truncated or corrupt, "
                              "re-create it") from exc


def load_weights(model: nn.Module, path: Path, expected_sha256: str | None = None) -> nn.Module:
    """Load safetensors into `model`, refusing any name/shape mismatch or checksum difference."""
    if expected_sha256 is not None and path.exists():
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise CheckpointError(f"{path} has sha256 {actual[:12]}… but its card expects {expected_sha256[:12]}…; "
                                  "the file was changed or belongs to another run: re-create it")
    state = read_tensors(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}" if missing else "",
            f"unexpected {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}" if unexpected else "",
            f"shape mismatch {wrong[:3]}" if wrong else "",
        ]))
        raise CheckpointError(f"{path} does not fit the architecture in its card ({detail}); "
                              "it comes from another model or version: re-create it")
    model.load_state_dict(state)
    return model
