"""ViT architectures as data: one schema for teachers, DeViT students and pruned ED-ViT parts.

A pruned part has per-block head counts and MLP widths that a plain timm kwargs dict
cannot express, so the bundle stores this schema and `build_vit` rebuilds the exact
module tree (timm's VisionTransformer with resized Attention/Mlp blocks) before the
safetensors weights are loaded. Nothing is pickled.

Also here: the presets a new teacher is trained from (`arch_for_preset`, which fits the
patch to the data's image size), and the bridge from a named timm model to this schema
(`create_timm_vit`, `arch_from_timm`), with every user mistake raised as one `ArchError` line.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vitfleet.errors import UserError


class ArchError(UserError):
    """An architecture the user asked for cannot be built or rebuilt; the message says what to change."""


class BlockShape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    mlp_hidden: int = Field(gt=0)


class ViTArch(BaseModel):
    """A timm VisionTransformer (class token, token pooling) with optional per-block shapes."""

    model_config = ConfigDict(extra="forbid")

    img_size: int = Field(gt=0)
    patch_size: int = Field(gt=0)
    in_chans: int = Field(gt=0)
    num_classes: int = Field(ge=0)
    embed_dim: int = Field(gt=0)
    depth: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    blocks: list[BlockShape] | None = None

    def model_post_init(self, __context: object) -> None:
        if self.img_size % self.patch_size:
            raise ValueError(patch_mismatch_message(self.img_size, self.patch_size))
        if self.blocks is not None and len(self.blocks) != self.depth:
            raise ValueError(f"blocks lists {len(self.blocks)} shapes for depth {self.depth}")
        if self.blocks is None and self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")

    def block_shapes(self) -> list[BlockShape]:
        if self.blocks is not None:
            return list(self.blocks)
        uniform = BlockShape(
            num_heads=self.num_heads,
            head_dim=self.embed_dim // self.num_heads,
            mlp_hidden=int(self.embed_dim * self.mlp_ratio),
        )
        return [uniform] * self.depth

    @property
    def num_tokens(self) -> int:
        return (self.img_size // self.patch_size) ** 2 + 1

    def timm_kwargs(self) -> dict[str, Any]:
        return dict(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            num_classes=self.num_classes,
            embed_dim=self.embed_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias,
            class_token=True,
            global_pool="token",
        )


def build_vit(arch: ViTArch, init: bool = True):  # -> timm VisionTransformer
    """Instantiate the module tree described by `arch` (random weights; `init=False` skips timm's
    truncated-normal init, which dominates building a ViT-B, when weights are loaded right after)."""
    from timm.layers import Mlp
    from timm.layers.attention import Attention
    from timm.models.vision_transformer import VisionTransformer

    kwargs = arch.timm_kwargs()
    if not init:
        kwargs["weight_init"] = "skip"
    if arch.blocks is not None:
        kwargs["num_heads"] = 1  # pruned widths need not divide evenly; the real blocks are set below
    model = VisionTransformer(**kwargs)
    if arch.blocks is not None:
        for block, shape in zip(model.blocks, arch.blocks):
            block.attn = Attention(
                arch.embed_dim, num_heads=shape.num_heads, attn_head_dim=shape.head_dim, qkv_bias=arch.qkv_bias
            )
            block.mlp = Mlp(arch.embed_dim, hidden_features=shape.mlp_hidden)
    return model


def arch_of(model: Any, base: ViTArch) -> ViTArch:
    """Read the actual (possibly pruned) shapes back off a VisionTransformer."""
    embed_dim = model.patch_embed.proj.out_channels
    blocks = []
    for block in model.blocks:
        attn = block.attn
        heads = attn.num_heads
        head_dim = attn.qkv.out_features // 3 // heads
        blocks.append(BlockShape(num_heads=heads, head_dim=head_dim, mlp_hidden=block.mlp.fc1.out_features))
    num_classes = model.head.out_features if hasattr(model.head, "out_features") else 0
    return base.model_copy(
        update=dict(embed_dim=embed_dim, blocks=blocks, num_classes=num_classes, num_heads=blocks[0].num_heads)
    )


def count_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def vit_flops(arch: ViTArch) -> int:
    """Multiply-accumulates x 2 per image for the matmuls (patch embed, attention, MLP, head)."""
    n = arch.num_tokens
    d = arch.embed_dim
    patches = n - 1
    flops = 2 * patches * d * arch.in_chans * arch.patch_size**2
    for s in arch.block_shapes():
        a = s.num_heads * s.head_dim
        flops += 2 * n * d * 3 * a  # qkv
        flops += 2 * 2 * n * n * a  # q k^T and attn v
        flops += 2 * n * a * d  # proj
        flops += 2 * 2 * n * d * s.mlp_hidden  # fc1 + fc2
    flops += 2 * d * arch.num_classes
    return int(flops)


# --- user-facing construction --------------------------------------------------------------------------------

USER_ARCH_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def patch_mismatch_message(img_size: int, patch_size: int) -> str:
    """One sentence naming both numbers and the nearest sizes that work."""
    patches = [d for d in _divisors(img_size) if 2 <= d <= max(2, 2 * patch_size)][-2:] or [img_size]
    lower = img_size // patch_size * patch_size
    sizes = [s for s in (lower, lower + patch_size) if s > 0]
    return (
        f"image size {img_size} is not a multiple of patch size {patch_size}: use patch_size "
        f"{' or '.join(map(str, patches))}, or an image size of {' or '.join(map(str, sizes))}"
    )


def make_arch(**fields: Any) -> ViTArch:
    """ViTArch from user-supplied fields; a bad value is one ArchError sentence, not pydantic's report."""
    unknown = sorted(set(fields) - set(ViTArch.model_fields))
    if unknown:
        raise ArchError(
            f"unknown architecture key {', '.join(map(repr, unknown))}; known keys: {', '.join(USER_ARCH_KEYS)}"
        )
    try:
        return ViTArch(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ArchError(f"{where}: {msg}" if where else msg) from None


def auto_patch_size(img_size: int, grid: int) -> int:
    """The patch that divides img_size and gives the token grid closest to `grid` per side (ties: finer)."""
    best = min(_divisors(img_size), key=lambda p: (abs(img_size // p - grid), p))
    if not grid / 2 <= img_size // best <= grid * 2:
        nice = [m for m in (grid * 4, grid * 8) if m > 0]
        raise ArchError(
            f"image size {img_size} has no patch size giving about a {grid}x{grid} token grid; "
            f"choose an image size that is a multiple of {grid} (e.g. {' or '.join(map(str, nice))})"
        )
    return best


class ArchPreset(BaseModel):
    """Widths of a from-scratch teacher. The token grid (img_size / patch_size) is what a preset fixes:
    on data of another size the patch is scaled to keep it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: str
    embed_dim: int
    depth: int
    num_heads: int
    img_size: int
    patch_size: int
    in_chans: int

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size


# `fmnist` is the default teacher for Fashion-MNIST: patch 4 (50 tokens) is what gets a small ViT to its best
# there; patch 7 (17 tokens) trains faster per epoch but stalls lower (docs/benchmarks.md).
# `small` is the default for RGB photos: an 8x8 grid is the usual CIFAR-ViT compromise (patch 4 at 32 px).
PRESETS: dict[str, ArchPreset] = {
    "fmnist": ArchPreset(
        purpose="Fashion-MNIST default: 28x28x1, patch 4, 192 wide, depth 6",
        embed_dim=192,
        depth=6,
        num_heads=3,
        img_size=28,
        patch_size=4,
        in_chans=1,
    ),
    "fmnist-p7": ArchPreset(
        purpose="28x28x1, patch 7: faster epochs, lower accuracy",
        embed_dim=192,
        depth=8,
        num_heads=6,
        img_size=28,
        patch_size=7,
        in_chans=1,
    ),
    "fmnist-large": ArchPreset(
        purpose="28x28x1, patch 7, 256 wide, depth 8",
        embed_dim=256,
        depth=8,
        num_heads=8,
        img_size=28,
        patch_size=7,
        in_chans=1,
    ),
    "small": ArchPreset(
        purpose="RGB default for small photos (CIFAR, folders up to ~96 px): 8x8 tokens, 192 wide, depth 6",
        embed_dim=192,
        depth=6,
        num_heads=3,
        img_size=32,
        patch_size=4,
        in_chans=3,
    ),
    "medium": ArchPreset(
        purpose="larger photos or more classes: 8x8 tokens, 384 wide, depth 8",
        embed_dim=384,
        depth=8,
        num_heads=6,
        img_size=32,
        patch_size=4,
        in_chans=3,
    ),
    "tiny": ArchPreset(
        purpose="tests and smoke runs: 4x4 tokens, 48 wide, depth 4",
        embed_dim=48,
        depth=4,
        num_heads=4,
        img_size=28,
        patch_size=7,
        in_chans=1,
    ),
}


def presets_help() -> str:
    return "; ".join(f"{name}: {p.purpose}" for name, p in PRESETS.items())


def arch_for_preset(
    preset: str,
    num_classes: int,
    overrides: dict[str, Any] | None = None,
    img_size: int | None = None,
    in_chans: int | None = None,
) -> ViTArch:
    """A preset fitted to the data: img_size / in_chans of the data (or the preset's own 28x28x1 family
    defaults), patch scaled to keep the preset's token grid; `overrides` (--vit-kwargs) win over everything."""
    if preset not in PRESETS:
        raise ArchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(USER_ARCH_KEYS))
    if unknown:
        raise ArchError(
            f"--vit-kwargs names unknown key {', '.join(map(repr, unknown))}; known keys: {', '.join(USER_ARCH_KEYS)}"
        )
    size = int(overrides.pop("img_size", img_size or p.img_size))
    if "patch_size" in overrides:
        patch = int(overrides.pop("patch_size"))
    else:
        patch = (
            p.patch_size
            if size % p.patch_size == 0 and size // p.patch_size == p.grid
            else auto_patch_size(size, p.grid)
        )
    fields = dict(embed_dim=p.embed_dim, depth=p.depth, num_heads=p.num_heads, in_chans=in_chans or p.in_chans)
    return make_arch(**{**fields, "img_size": size, "patch_size": patch, "num_classes": num_classes, **overrides})


# --- timm models by name -------------------------------------------------------------------------------------

# timm modules whose models are (or can be) plain class-token VisionTransformers.
TIMM_VIT_MODULES = ("timm.models.vision_transformer", "timm.models.deit")


def timm_vit_kwargs_keys() -> list[str]:
    from timm.models.vision_transformer import VisionTransformer

    return [k for k in inspect.signature(VisionTransformer.__init__).parameters if k not in ("self", "num_classes")]


def create_timm_vit(name: str, num_classes: int, kwargs: dict[str, Any] | None = None):  # -> VisionTransformer
    """timm.create_model(name, pretrained=False, ...) for a ViT/DeiT name; never downloads (pretrained=False
    only builds the module tree). Unknown names get close suggestions, non-ViT names are refused."""
    import timm
    from timm.models import model_entrypoint
    from timm.models.vision_transformer import VisionTransformer

    kwargs = dict(kwargs or {})
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models("*vit*") + timm.list_models("*deit*"), n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else "list them with timm.list_models('*vit*')"
        raise ArchError(f"timm has no model named {name!r}; {hint}")
    if model_entrypoint(name).__module__ not in TIMM_VIT_MODULES:
        raise ArchError(
            f"{name} is not a Vision Transformer ({model_entrypoint(name).__module__}); vitfleet "
            "decomposes timm ViT/DeiT models only, e.g. --arch vit_base_patch16_224 or "
            "deit_small_patch16_224"
        )
    allowed = timm_vit_kwargs_keys()
    unknown = sorted(set(kwargs) - set(allowed))
    if "num_classes" in kwargs:
        raise ArchError("--vit-kwargs must not set num_classes: it is the data set's class count")
    if unknown:
        raise ArchError(
            f"--vit-kwargs names unknown key {', '.join(map(repr, unknown))}; timm's VisionTransformer "
            "takes e.g. img_size, patch_size, in_chans, embed_dim, depth, num_heads"
        )
    try:
        # weight_init="skip": the checkpoint overwrites every weight, and timm's init costs seconds for a ViT-B.
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **{"weight_init": "skip", **kwargs})
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ArchError(
            f"timm cannot build {name} with --vit-kwargs {kwargs} ({str(exc).splitlines()[0]}); fix or drop those keys"
        ) from None
    if type(model) is not VisionTransformer or model.cls_token is None or model.global_pool != "token":
        raise ArchError(
            f"{name} is a {type(model).__name__} without a plain class token (distillation token, "
            "register tokens or average pooling); vitfleet decomposes class-token ViTs, e.g. "
            "vit_base_patch16_224 or deit_small_patch16_224"
        )
    return model


def arch_from_timm(model: Any, name: str) -> ViTArch:
    """This schema for a plain timm ViT, checked by rebuilding it: any timm feature the schema cannot
    express (layer scale, qk-norm, pre-norm, fc-norm, ...) shows up as different parameter names."""
    pe = model.patch_embed
    first = model.blocks[0]
    arch = make_arch(
        img_size=pe.img_size[0],
        patch_size=pe.patch_size[0],
        in_chans=pe.proj.in_channels,
        num_classes=model.num_classes,
        embed_dim=model.embed_dim,
        depth=len(model.blocks),
        num_heads=first.attn.num_heads,
        mlp_ratio=first.mlp.fc1.out_features / model.embed_dim,
        qkv_bias=first.attn.qkv.bias is not None,
    )
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in build_vit(arch, init=False).state_dict().items()}
    if pe.img_size[0] != pe.img_size[1] or theirs != ours:
        extra = sorted(set(theirs) ^ set(ours))[:3] or ["non-square input"]
        raise ArchError(
            f"{name} has parts a plain ViT does not ({', '.join(extra)}); vitfleet rebuilds plain "
            "class-token ViTs: use e.g. vit_base_patch16_224, deit_small_patch16_224, or drop the "
            "--vit-kwargs that add them"
        )
    return arch
