"""Reading back what the trackers wrote, with each tracker's own readers and formats."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

#: The `.wandb` transaction log: LevelDB's log format (32 KiB blocks of crc32c-checked records, a record split
#: across blocks as FIRST/MIDDLE/LAST) after a 7-byte header; each record is one protobuf `Record` of wandb's.
_WANDB_HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> Iterator[bytes]:
    """The raw records of a `.wandb` file, in order."""
    data = path.read_bytes()
    assert data.startswith(_WANDB_HEADER), f"{path} is not a W&B transaction log"
    pos, pending = len(_WANDB_HEADER), b""
    while pos + 7 <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < 7:  # a block's tail too short for a header is padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == _FULL:
            yield payload
        elif kind == _FIRST:
            pending = payload
        elif kind == _MIDDLE:
            pending += payload
        elif kind == _LAST:
            yield pending + payload
            pending = b""


def wandb_exit_codes(run_folder: Path) -> list[int]:
    """The exit codes the `exit` records of an offline W&B run's `.wandb` file give (one per finished run)."""
    from wandb.proto import wandb_internal_pb2

    (log,) = run_folder.glob("run-*.wandb")
    codes = []
    for raw in wandb_records(log):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # generated protobuf
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "exit":
            codes.append(int(record.exit.exit_code))
    return codes


def wandb_history(run_folder: Path) -> dict[str, dict[int, float]]:
    """`{metric: {step: value}}` from the history records of an offline W&B run folder's `.wandb` file."""
    from wandb.proto import wandb_internal_pb2

    (log,) = run_folder.glob("run-*.wandb")
    history: dict[str, dict[int, float]] = {}
    for raw in wandb_records(log):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # generated protobuf
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") != "history":
            continue
        items = {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item}
        step = int(items.pop("_step"))
        for key, value in items.items():
            if not key.startswith("_"):
                history.setdefault(key, {})[step] = float(value)
    return history

