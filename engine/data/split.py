"""Seeded train/validation/test splits and representative subsets.

Splits are stratified by label when there is one, and exact duplicates are kept together (a group of
identical rows always lands in one split), so nothing leaks from training into evaluation.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence

SPLITS = ("train", "validation", "test")


def split_indices(keys: Sequence[Hashable], labels: Sequence[str | None], val_fraction: float,
                  test_fraction: float, seed: int) -> dict[str, list[int]]:
    """Row indices per split. `keys` group duplicates (equal key = same content); `labels` stratify."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    strata: dict[str | None, list[list[int]]] = defaultdict(list)
    for members in groups.values():
        strata[labels[members[0]]].append(members)
    rng = random.Random(seed)
    out: dict[str, list[int]] = {name: [] for name in SPLITS}
    for label in sorted(strata, key=lambda x: (x is None, str(x))):
        stratum = strata[label]
        rng.shuffle(stratum)
        total = sum(len(g) for g in stratum)
        want = {"test": round(total * test_fraction), "validation": round(total * val_fraction)}
        taken = {"test": 0, "validation": 0}
        for members in stratum:
            target = next((name for name in ("test", "validation") if taken[name] < want[name]), "train")
            out[target].extend(members)
            if target != "train":
                taken[target] += len(members)
    if not out["train"] and (out["validation"] or out["test"]):
        donor = "validation" if out["validation"] else "test"
        out["train"], out[donor] = out[donor], []
    return {name: sorted(idx) for name, idx in out.items()}


def representative_subset(lengths: Sequence[int], labels: Sequence[str | None], fraction: float,
                          seed: int = 0) -> list[int]:
    """Indices of about `fraction` of the rows, stratified by label and by length quartile.

    Every stratum keeps its share (at least one row), so a pilot run sees short and long rows of every label.
    """
    n = len(lengths)
    if n == 0 or fraction >= 1:
        return list(range(n))
    ordered = sorted(lengths)
    cuts = [ordered[min(n - 1, int(n * q))] for q in (0.25, 0.5, 0.75)]
    strata: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, (length, label) in enumerate(zip(lengths, labels, strict=True)):
        bucket = sum(length > c for c in cuts)
        strata[(str(label), bucket)].append(i)
    rng = random.Random(seed)
    chosen: list[int] = []
    for key in sorted(strata):
        members = strata[key]
        k = max(1, round(len(members) * fraction))
        chosen.extend(rng.sample(members, min(k, len(members))))
    return sorted(chosen)
