"""ViT architectures as data: one schema for teachers, DeViT students and pruned ED-ViT parts.

A pruned part has per-block head counts and MLP widths that a plain timm kwargs dict
cannot express, so the bundle stores this schema and `build_vit` rebuilds the exact
module tree (timm's VisionTransformer with resized Attention/Mlp blocks) before the
safetensors weights are loaded. Nothing is pickled.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.blocks is not None and len(self.blocks) != self.depth:
            raise ValueError(f"blocks lists {len(self.blocks)} shapes for depth {self.depth}")
        if self.blocks is None and self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")

    def block_shapes(self) -> list[BlockShape]:
        if self.blocks is not None:
            return list(self.blocks)
        uniform = BlockShape(num_heads=self.num_heads, head_dim=self.embed_dim // self.num_heads,
                             mlp_hidden=int(self.embed_dim * self.mlp_ratio))
        return [uniform] * self.depth

    @property
    def num_tokens(self) -> int:
        return (self.img_size // self.patch_size) ** 2 + 1

    def timm_kwargs(self) -> dict[str, Any]:
        return dict(img_size=self.img_size, patch_size=self.patch_size, in_chans=self.in_chans,
                    num_classes=self.num_classes, embed_dim=self.embed_dim, depth=self.depth,
                    num_heads=self.num_heads, mlp_ratio=self.mlp_ratio, qkv_bias=self.qkv_bias,
                    class_token=True, global_pool="token")


def build_vit(arch: ViTArch):  # -> timm VisionTransformer
    """Instantiate the module tree described by `arch` (random weights)."""
    from timm.layers import Mlp
    from timm.layers.attention import Attention
    from timm.models.vision_transformer import VisionTransformer

    kwargs = arch.timm_kwargs()
    if arch.blocks is not None:
        kwargs["num_heads"] = 1  # pruned widths need not divide evenly; the real blocks are set below
    model = VisionTransformer(**kwargs)
    if arch.blocks is not None:
        for block, shape in zip(model.blocks, arch.blocks):
            block.attn = Attention(arch.embed_dim, num_heads=shape.num_heads, attn_head_dim=shape.head_dim,
                                   qkv_bias=arch.qkv_bias)
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
    return base.model_copy(update=dict(embed_dim=embed_dim, blocks=blocks, num_classes=num_classes,
                                       num_heads=blocks[0].num_heads))


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
        flops += 2 * n * d * 3 * a          # qkv
        flops += 2 * 2 * n * n * a          # q k^T and attn v
        flops += 2 * n * a * d              # proj
        flops += 2 * 2 * n * d * s.mlp_hidden  # fc1 + fc2
    flops += 2 * d * arch.num_classes
    return int(flops)
