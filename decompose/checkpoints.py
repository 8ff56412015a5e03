"""Weights on disk: safetensors only (never pickles), with a JSON card beside them.

Loading checks every tensor name and shape against the architecture the card
describes, so a corrupted, truncated or foreign file fails with a message that says
what does not match instead of a half-loaded model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vitfleet.errors import UserError
from vitfleet.file_digest import sha256_file


class CheckpointError(UserError):
    """A weights file is missing, corrupt or belongs to another model; the message says which."""


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
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}); it is truncated or corrupt, re-create it"
        ) from exc


def mismatch_detail(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> str:
    """Missing / unexpected names and shape differences between a file and a model ("" when they fit)."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    return "; ".join(
        filter(
            None,
            [
                f"missing {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}" if missing else "",
                f"unexpected {', '.join(unexpected[:3])}{'…' if len(unexpected) > 3 else ''}" if unexpected else "",
                f"shapes differ: {', '.join(wrong[:2])}" if wrong else "",
            ],
        )
    )


def load_weights(model: nn.Module, path: Path, expected_sha256: str | None = None) -> nn.Module:
    """Load safetensors into `model`, refusing any name/shape mismatch or checksum difference."""
    if expected_sha256 is not None and path.exists():
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise CheckpointError(
                f"{path} has sha256 {actual[:12]}… but its card expects {expected_sha256[:12]}…; "
                "the file was changed or belongs to another run: re-create it"
            )
    state = read_tensors(path)
    detail = mismatch_detail(state, model.state_dict())
    if detail:
        raise CheckpointError(
            f"{path} does not fit the architecture in its card ({detail}); "
            "it comes from another model or version: re-create it"
        )
    model.load_state_dict(state)
    return model


# --- a user's own checkpoint (imported once, then re-saved as safetensors) -----------------------------------

# Training scripts wrap the weights under one of these keys (timm's train.py: state_dict; many others: model).
STATE_DICT_WRAPPERS = ("state_dict", "model", "model_state_dict", "state_dict_ema")
# DDP (`module.`) and torch.compile (`_orig_mod.`) prefix every name; the weights are the same.
STATE_DICT_PREFIXES = ("module.", "_orig_mod.")
SAVE_HINT = "save the weights with torch.save(model.state_dict(), 'ft.pth') or safetensors.torch.save_file"


def _unwrap_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in STATE_DICT_WRAPPERS:
            if isinstance(obj.get(key), dict):
                return _unwrap_state_dict(obj[key], path)
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = type(obj).__name__ if not isinstance(obj, dict) else f"a dict with keys {sorted(map(str, obj))[:4]}"
        raise CheckpointError(f"{path} holds {found}, not a state dict of tensors; {SAVE_HINT}")
    state = {str(k): v for k, v in obj.items()}
    for prefix in STATE_DICT_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a weights-only .pth/.pt (plain, or wrapped under `model` /
    `state_dict`, with DDP's `module.` prefix). Pickled model objects are refused: reading them runs code."""
    import pickle

    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the path of your .safetensors or .pth file")
    if path.suffix == ".safetensors":
        return read_tensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds pickled Python objects (a whole model or a training state), "
            f"not only weights; {SAVE_HINT} and import that file"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - torch.load raises KeyError, EOFError, RuntimeError... on foreign bytes
        raise CheckpointError(
            f"{path} is neither a torch checkpoint nor a safetensors file "
            f"({str(exc).splitlines()[0][:120]}); {SAVE_HINT}"
        ) from exc
    return _unwrap_state_dict(obj, path)


def check_vit_state_fits(
    state: dict[str, torch.Tensor], model: nn.Module, name: str, num_classes: int, dataset: str
) -> None:
    """Name the first user-fixable difference between a checkpoint and the timm ViT it should load into."""
    own = model.state_dict()

    def shape(key: str, source: dict) -> tuple[int, ...] | None:
        return tuple(source[key].shape) if key in source else None

    head = shape("head.weight", state)
    if head is not None and head[0] != num_classes:
        raise CheckpointError(
            f"the checkpoint's head has {head[0]} outputs but {dataset} has {num_classes} classes; "
            "import the checkpoint fine-tuned on this data set (or point --dataset at the data it "
            "was trained on)"
        )
    theirs, mine = shape("patch_embed.proj.weight", state), shape("patch_embed.proj.weight", own)
    if theirs is not None and mine is not None and len(theirs) == len(mine) == 4:
        if theirs[0] != mine[0]:
            raise CheckpointError(
                f"the checkpoint does not match {name}: it is {theirs[0]} wide, {name} is {mine[0]} "
                "wide; give --arch the timm name the checkpoint was trained from"
            )
        if theirs[1] != mine[1]:
            raise CheckpointError(
                f"the checkpoint's patch embedding has {theirs[1]} input channels but in_chans is "
                f'{mine[1]}; set "in_chans": {theirs[1]} in --vit-kwargs'
            )
    patch = theirs[2] if theirs is not None and len(theirs) == 4 else model.patch_embed.patch_size[0]
    pos = shape("pos_embed", state)
    # The image size the checkpoint was trained at: its position grid times its patch.
    trained_size = round((pos[1] - getattr(model, "num_prefix_tokens", 1)) ** 0.5) * patch if pos else None
    size_hint = f', "img_size": {trained_size}' if trained_size else ""
    if theirs is not None and mine is not None and len(theirs) == len(mine) == 4 and theirs[2:] != mine[2:]:
        raise CheckpointError(
            f"the checkpoint uses {theirs[2]}x{theirs[3]} patches but the model {mine[2]}x{mine[3]}; "
            f'set {{"patch_size": {theirs[2]}{size_hint}}} in --vit-kwargs'
        )
    if pos is not None and "pos_embed" in own and pos != tuple(own["pos_embed"].shape):
        raise CheckpointError(
            f"the checkpoint was trained at image size {trained_size} but the model is built for "
            f'{model.patch_embed.img_size[0]}; set {{"img_size": {trained_size}}} in --vit-kwargs'
        )
    detail = mismatch_detail(state, own)
    if detail:
        raise CheckpointError(
            f"the checkpoint does not fit {name} ({detail}); give --arch the timm name and "
            "--vit-kwargs it was trained with"
        )
