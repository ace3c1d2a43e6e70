"""The one catalog GPU plans are made for when the GPU in question is not this machine's: the GPUs screen's
what-fits table, New run's estimate and the Shortlist's verdicts share it (store setting `target_gpu`).

Choosing a catalog GPU on any of those screens changes it for all. Light (no textual, no ML stack).
"""

from __future__ import annotations

from engine.catalog import load_catalog
from slmtui.store import Store

TARGET_GPU_KEY = "target_gpu"
#: A common 24 GiB card: what a newcomer most often fine-tunes a small model on.
DEFAULT_TARGET_GPU = "RTX-4090"
#: Where the Shortlist kept its own choice before there was one setting.
_FORMER_KEY = "shortlist.gpu"


def target_gpu(store: Store) -> str:
    """The catalog name of the target GPU (the default when unset or unknown)."""
    catalog = load_catalog()
    for value in (store.setting(TARGET_GPU_KEY), store.setting(_FORMER_KEY)):
        gpu = catalog.gpu(str(value)) if value else None
        if gpu is not None:
            return gpu.name
    return DEFAULT_TARGET_GPU


def set_target_gpu(store: Store, name: str) -> str:
    """Make the catalog GPU `name` (or alias) the target; returns its catalog name. ValueError when unknown."""
    gpu = load_catalog().gpu(name)
    if gpu is None:
        raise ValueError(f"Unknown GPU {name!r}: use a name from the catalog, such as {DEFAULT_TARGET_GPU}.")
    if store.setting(TARGET_GPU_KEY) != gpu.name:
        store.set_setting(TARGET_GPU_KEY, gpu.name)
    return gpu.name
