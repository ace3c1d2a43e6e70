"""Reading a TensorBoard log folder with TensorBoard's own reader (`EventAccumulator`).

The scalar tags the HF Trainer writes (`train/loss`, `train/learning_rate`, `eval/loss`...), those of slmtui's
own mirror (`train/lr`, `eval/val_loss`) and the plain names (`loss`, `val_loss`) are understood.
"""

from __future__ import annotations

from pathlib import Path

from engine.external.log import ACCEPTED, ExternalLog, ExternalLogError

EVENT_FILE_GLOB = "events.out.tfevents.*"
#: A `metrics`/`eval` field -> the scalar tags it is read from, the first present winning.
TAGS = {
    "loss": ("train/loss", "loss", "train_loss", "Loss/train"),
    "lr": ("train/learning_rate", "train/lr", "learning_rate", "lr"),
    "grad_norm": ("train/grad_norm", "grad_norm"),
    "epoch": ("train/epoch", "epoch"),
    "val_loss": ("eval/loss", "eval/val_loss", "eval_loss", "val_loss", "Loss/val"),
}


def is_tensorboard_log(path: Path) -> bool:
    """Whether `path` is an event file or a folder holding some (at any depth)."""
    if path.is_file():
        return path.name.startswith("events.out.tfevents.")
    return path.is_dir() and next(path.rglob(EVENT_FILE_GLOB), None) is not None


def log_folder(path: Path) -> Path:
    """The one folder of event files at or under `path`; `ExternalLogError` when there is none or several."""
    if path.is_file():
        return path
    folders = sorted({p.parent for p in path.rglob(EVENT_FILE_GLOB) if p.is_file()})
    if not folders:
        raise ExternalLogError(f"{path} holds no TensorBoard event files ({EVENT_FILE_GLOB}) and no "
                               f"trainer_state.json; give {ACCEPTED}.")
    if len(folders) > 1:
        names = ", ".join(str(f.relative_to(path)) or "." for f in folders[:3])
        raise ExternalLogError(f"{path} holds {len(folders)} TensorBoard runs ({names}{'...' if len(folders) > 3 else ''});"
                               f" import one of those folders.")
    return folders[0]


def read_tensorboard(path: Path) -> ExternalLog:
    """An `ExternalLog` from the scalars of a TensorBoard log; `ExternalLogError` (one sentence) when it has
    no loss."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    folder = log_folder(path)
    reader = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep every point
    try:
        reader.Reload()
    except Exception as exc:  # a corrupt file: TensorBoard's reader raises its own errors
        raise ExternalLogError(f"TensorBoard could not read the event files in {folder} ({exc}).") from None
    present = set(reader.Tags().get("scalars", []))
    log = ExternalLog("tensorboard", folder)
    for name, tags in TAGS.items():
        tag = next((t for t in tags if t in present), None)
        for point in reader.Scalars(tag) if tag else []:
            log.add(point.step, name, float(point.value))
            if name in ("loss", "val_loss"):
                log.times.setdefault(point.step, point.wall_time)
    if not any("loss" in figures for figures in log.train.values()) and not log.evals:
        shown = ", ".join(sorted(present)[:6]) or "none"
        raise ExternalLogError(f"The TensorBoard log in {folder} has no loss scalar (looked for "
                               f"{', '.join(TAGS['loss'] + TAGS['val_loss'])}; it has {shown}).")
    log.last_step = max(log.steps)
    if log.times:
        log.started, log.ended = min(log.times.values()), max(log.times.values())
    return log
