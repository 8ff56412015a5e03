"""Can DeViT students flip their images and keep the teacher's targets? A measurement, not an assumption.

DEKD matches the teacher's q/k/v relations (decompose/dekd.py) at the middle layer. If the teacher's relations
on a mirrored image were the original's relations with the tokens mirrored, flipped students could reuse the
cached targets. Position embeddings are not mirror-symmetric, so they need not be: this measures, on test
images, KL(teacher on the flipped image ‖ candidate) for three candidates -- the original's relations mirrored
token by token, the original's relations as they are, and another image's relations (the scale of "unrelated").

    python -m vitfleet.bench.flip_relations bench/teachers/ablation --images 512
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vitfleet.console import user_errors


def mirror_permutation(grid: int, prefix_tokens: int) -> list[int]:
    """Token order of the mirrored image: prefix tokens (CLS) stay, each patch row reverses."""
    return list(range(prefix_tokens)) + [
        prefix_tokens + r * grid + (grid - 1 - c) for r in range(grid) for c in range(grid)
    ]


def measure(teacher_dir: Path, images: int = 512, data_dir: Path | None = None) -> dict[str, float]:
    import torch

    from vitfleet.datasets import load_dataset
    from vitfleet.decompose.dekd import QKVTap, middle_layer, relation_kl
    from vitfleet.decompose.teacher import load_teacher
    from vitfleet.decompose.training import to_tensors

    teacher, card = load_teacher(teacher_dir)
    x, _y = to_tensors(
        load_dataset(card.dataset, "test", data_dir, card.preprocessing).head(images), card.preprocessing
    )
    grid = card.arch.img_size // card.arch.patch_size
    tap = QKVTap(teacher, middle_layer(len(teacher.blocks)))

    def relations(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher.forward_features(batch)
        return tap.relations()  # (B, 3, N, N) log-probabilities

    original, flipped = relations(x), relations(x.flip(3))
    tap.remove()
    prefix = original.shape[-1] - grid * grid
    perm = torch.tensor(mirror_permutation(grid, prefix))
    mirrored = original[:, :, perm][:, :, :, perm]

    def kl(candidate: torch.Tensor) -> float:
        # The reference's scale (summed over token rows, averaged over images), averaged over q, k and v.
        return float(sum(relation_kl(flipped[:, i], candidate[:, i], "batchmean") for i in range(3)) / 3)

    return {
        "images": float(len(x)),
        "tokens": float(original.shape[-1]),
        "kl_mirrored_original": kl(mirrored),
        "kl_unmirrored_original": kl(original),
        "kl_other_image": kl(original.roll(1, dims=0)),
        "kl_flipped_vs_itself": kl(flipped),
    }


@user_errors
def main(
    teacher: Annotated[Path, typer.Argument(help="a teacher folder (teacher.json + weights)")],
    images: Annotated[int, typer.Option(min=2, help="first N test images")] = 512,
) -> None:
    """Print the KL of the teacher's relations on flipped images against each candidate target, as JSON."""
    print(json.dumps(measure(teacher, images), indent=2))


if __name__ == "__main__":
    typer.run(main)
