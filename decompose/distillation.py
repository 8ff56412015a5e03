"""Soft-target distillation (Hinton et al.): the KD loss and the teacher's logits restricted to a part's classes.

Used by ED-ViT parts (--part-kd-temperature) and the bench's distilled compact baseline.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def restricted_logits(logits: torch.Tensor, classes: list[int], other_class: bool) -> torch.Tensor:
    """The teacher's logits over `classes`, plus (other_class) one "other" logit holding every remaining class.

    logsumexp keeps the probabilities exact: softmax of the result gives the teacher's own probability of each
    of the part's classes and, in the last slot, the sum of the probabilities of all the others.
    """
    inside = logits[:, classes]
    if not other_class:
        return inside
    rest = torch.ones(logits.shape[1], dtype=torch.bool)
    rest[classes] = False
    return torch.cat([inside, torch.logsumexp(logits[:, rest], dim=1, keepdim=True)], dim=1)


def soft_kd_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's KD term: T² · KL(softmax(teacher / T) ‖ softmax(student / T)), averaged over the batch."""
    return (
        F.kl_div(
            F.log_softmax(logits / temperature, dim=1),
            F.log_softmax(teacher_logits / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        * temperature**2
    )
