"""Class partition: K disjoint class subsets of near-equal size, and the label maps.

`random` is both papers' seeded shuffle. `confusion` (vitfleet's own option) puts
classes the teacher confuses with each other into the same subset, so each
specialist learns the hard distinctions and the fusion head has easier work
across parts.
"""

from __future__ import annotations

import numpy as np

from vitfleet.errors import UserError


class PartitionError(UserError):
    """The requested partition is impossible (e.g. more parts than classes)."""


def subset_sizes(num_classes: int, k: int) -> list[int]:
    if k < 1:
        raise PartitionError(f"--parts must be at least 1, got {k}")
    if k > num_classes:
        raise PartitionError(
            f"cannot split {num_classes} classes into {k} non-empty parts; use --parts <= {num_classes}"
        )
    base, extra = divmod(num_classes, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def random_partition(num_classes: int, k: int, seed: int = 0) -> list[list[int]]:
    sizes = subset_sizes(num_classes, k)
    order = np.random.default_rng(seed).permutation(num_classes).tolist()
    out, start = [], 0
    for size in sizes:
        out.append(sorted(order[start : start + size]))
        start += size
    return out


def confusion_partition(confusion: np.ndarray, k: int, seed: int = 0) -> list[list[int]]:
    """Greedy: walk class pairs from most to least confused and co-locate them while sizes allow.

    `confusion[i, j]` counts true class i predicted as j (teacher, on held-out data).
    """
    c = confusion.shape[0]
    sizes = subset_sizes(c, k)
    affinity = confusion + confusion.T
    np.fill_diagonal(affinity, 0)
    rng = np.random.default_rng(seed)
    # Tie-break deterministically but not by class id alone, so equal affinities don't bias low ids.
    jitter = rng.random(affinity.shape) * 1e-6
    pairs = sorted(((affinity[i, j] + jitter[i, j], i, j) for i in range(c) for j in range(i + 1, c)), reverse=True)
    group_of: dict[int, int] = {}
    groups: list[list[int]] = [[] for _ in range(k)]
    capacity = sorted(sizes, reverse=True)

    def open_group(needed: int) -> int | None:
        for g in range(k):
            if not groups[g] and capacity[g] >= needed:
                return g
        return None

    for _, i, j in pairs:
        gi, gj = group_of.get(i), group_of.get(j)
        if gi is None and gj is None:
            g = open_group(2)
            if g is not None:
                groups[g] += [i, j]
                group_of[i] = group_of[j] = g
        elif gi is not None and gj is None and len(groups[gi]) < capacity[gi]:
            groups[gi].append(j)
            group_of[j] = gi
        elif gj is not None and gi is None and len(groups[gj]) < capacity[gj]:
            groups[gj].append(i)
            group_of[i] = gj
    for cls in range(c):  # classes left over (no confusions, or groups were full): fill remaining space
        if cls not in group_of:
            g = max(range(k), key=lambda g: capacity[g] - len(groups[g]))
            groups[g].append(cls)
            group_of[cls] = g
    return sorted((sorted(g) for g in groups), key=lambda g: g[0])


def soft_confusion(probabilities: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C): the teacher's probability mass on class j summed over the images of true class i.

    Counting argmax errors throws most of the signal away on images the teacher fits (93 % of its own training
    images are right, so a pair it never gets wrong there looks unrelated even when it gives it 20 % every
    time); the summed probabilities keep that similarity and need no held-out split.
    """
    confusion = np.zeros((num_classes, num_classes))
    np.add.at(confusion, labels, probabilities)
    return confusion


def local_label_maps(partition: list[list[int]], num_classes: int) -> np.ndarray:
    """(K, C) array: local index of global class c in part k, or -1 when c is not in part k."""
    maps = np.full((len(partition), num_classes), -1, dtype=np.int64)
    for k, classes in enumerate(partition):
        maps[k, classes] = np.arange(len(classes))
    return maps


def validate_partition(partition: list[list[int]], num_classes: int) -> None:
    flat = [c for part in partition for c in part]
    if sorted(flat) != list(range(num_classes)):
        raise PartitionError(f"partition must cover classes 0..{num_classes - 1} exactly once, got {partition}")
    sizes = [len(p) for p in partition]
    if max(sizes) - min(sizes) > 1:
        raise PartitionError(f"partition sizes must differ by at most 1, got {sizes}")
