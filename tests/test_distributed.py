"""Data-parallel training: two CPU processes on gloo under torchrun, launched by `python -m engine run`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.protocol import read_events
from engine.train.checkpoint import OPTIMIZER_SHARDED, list_checkpoints, load_state
from tests.conftest import REPO, cli_env
from tests.ports import unused_port
from tests.test_engine_run import make_run

pytestmark = pytest.mark.slow


def test_two_cpu_processes_train_one_run_and_rank_zero_alone_writes(tmp_path: Path, home: Path,
                                                                    tiny_model_dir: Path) -> None:
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=6, eval_every=3, save_every=3, devices=2,
                       eval_samples=1, micro_batch=2)
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=cli_env(home, OMP_NUM_THREADS="1"))
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, log
    assert [p.name for p in run_dir.glob("events*")] == ["events.jsonl"]
    events = read_events(run_dir / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("finished") == 1, kinds
    started = events[kinds.index("started")]
    assert started["devices"] == 2 and started["effective_batch"] == 4
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]  # no step twice
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    assert [e["step"] for e in events if e["type"] == "eval"] == [3, 6]
    assert events[-1]["status"] == "completed", log
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    [(step, folder, _)] = list_checkpoints(run_dir)
    ranks = load_state(folder)["ranks"]
    assert step == 3 and len(ranks) == 2
    assert ranks[0]["stream"]["examples_seen"] == ranks[1]["stream"]["examples_seen"] == 6
    assert json.loads((run_dir / "engine.pid").read_text())["argv"][-1] == str(run_dir)  # the launcher's

    # Resuming from step 3 retraces steps 4 to 6: each rank continues its own shard where it was.
    again = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir), "--resume"], cwd=REPO,
                           capture_output=True, text=True, timeout=300, env=cli_env(home, OMP_NUM_THREADS="1"))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    resumed = read_events(run_dir / "events.jsonl")[len(events):]
    assert [e["resumed_from"] for e in resumed if e["type"] == "started"] == [3]
    first = {m["step"]: m["loss"] for m in metrics}
    retraced = {e["step"]: e["loss"] for e in resumed if e["type"] == "metrics"}
    assert sorted(retraced) == [4, 5, 6]
    for step, loss in retraced.items():
        assert loss == pytest.approx(first[step], rel=1e-4, abs=1e-5), step


def test_a_sharded_full_fine_tuning_run_checkpoints_whole_weights_and_resumes_on_one_process(
        tmp_path: Path, home: Path, tiny_model_dir: Path) -> None:
    from engine.spec import dump_spec, load_spec

    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=4, eval_every=2, save_every=2, devices=2,
                       eval_samples=1, micro_batch=2)
    spec = load_spec(run_dir / "spec.toml")
    spec.method.kind, spec.train.strategy = "full", "fsdp"
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    env = cli_env(home, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    events = read_events(run_dir / "events.jsonl")
    [started] = [e for e in events if e["type"] == "started"]
    assert started["strategy"] == "fsdp" and started["devices"] == 2
    assert [e["step"] for e in events if e["type"] == "eval"] == [2, 4]
    assert events[-1]["status"] == "completed"
    [(step, folder, _)] = list_checkpoints(run_dir)
    assert step == 2 and (folder / "model" / "model.safetensors").is_file()  # whole, not a shard
    assert load_state(folder)["optimizer_keys"] == OPTIMIZER_SHARDED and load_state(folder)["optimizer"] is None
    assert (folder / "optimizer" / ".metadata").is_file() and len(list((folder / "optimizer").glob("*.distcp"))) == 2
    assert (run_dir / "model" / "model.safetensors").is_file()
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(run_dir / "model") is not None  # the final weights load alone

    # the step-2 checkpoint resumes on one process (no sharding): weights and optimizer carry over (its examples
    # differ: one process reads the whole split, not two shards, so the losses are close, not equal)
    spec.train.devices = 1
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    (run_dir / "summary.json").write_text(json.dumps({"status": "stopped"}))
    again = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir), "--resume"], cwd=REPO,
                           capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    resumed = read_events(run_dir / "events.jsonl")[len(events):]
    assert [(e["resumed_from"], e["strategy"]) for e in resumed if e["type"] == "started"] == [(2, "single")]
    first = {e["step"]: e["loss"] for e in events if e["type"] == "metrics"}
    retraced = {e["step"]: e["loss"] for e in resumed if e["type"] == "metrics"}
    assert sorted(retraced) == [3, 4]
    for step, loss in retraced.items():
        assert loss == pytest.approx(first[step], rel=0.02), step  # from scratch it would be about first[1]
    assert first[1] - first[3] > 0.5


def resume_with(run_dir: Path, env: dict[str, str], **train: object) -> list[dict]:
    """Resume the run with `train` changed in its spec; the events it added."""
    from engine.spec import dump_spec, load_spec

    spec = load_spec(run_dir / "spec.toml")
    for key, value in train.items():
        setattr(spec.train, key, value)
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    (run_dir / "summary.json").write_text(json.dumps({"status": "stopped"}))
    before = len(read_events(run_dir / "events.jsonl"))
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir), "--resume"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return read_events(run_dir / "events.jsonl")[before:]


def test_a_lora_run_moves_from_one_process_to_two_sharded_and_back(tmp_path: Path, home: Path,
                                                                    tiny_model_dir: Path) -> None:
    """One process checkpoints at step 2; two FSDP ranks resume it and checkpoint at step 4 (each rank writes its
    own optimizer shard); one process resumes that. (tests/test_data_parallel.py checks that the state carried
    over is exactly the one saved.)"""
    import shutil

    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=6, eval_every=0, save_every=2, micro_batch=2)
    env = cli_env(home, OMP_NUM_THREADS="1")
    first = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir)], cwd=REPO, capture_output=True,
                           text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for step, folder, _ in list_checkpoints(run_dir):
        if step > 2:
            shutil.rmtree(folder)

    sharded = resume_with(run_dir, env, devices=2, strategy="fsdp")
    assert [(e["resumed_from"], e["strategy"]) for e in sharded if e["type"] == "started"] == [(2, "fsdp")]
    assert [e["step"] for e in sharded if e["type"] == "metrics"] == [3, 4, 5, 6]
    assert sharded[-1]["status"] == "completed"
    from safetensors.torch import load_file

    saved = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    assert saved and all("lora_" in name for name in saved)  # the adapter alone, gathered from both ranks
    step4 = dict((step, folder) for step, folder, _ in list_checkpoints(run_dir))[4]
    assert load_state(step4)["optimizer_keys"] == OPTIMIZER_SHARDED
    for step, folder, _ in list_checkpoints(run_dir):
        if step > 4:
            shutil.rmtree(folder)

    back = resume_with(run_dir, env, devices=1)
    assert [(e["resumed_from"], e["strategy"]) for e in back if e["type"] == "started"] == [(4, "single")]
    assert [e["step"] for e in back if e["type"] == "metrics"] == [5, 6]
    assert back[-1]["status"] == "completed"


def test_two_machines_meet_at_node_zero_and_node_zero_writes(tmp_path: Path, home: Path, tiny_model_dir: Path) -> None:
    """Two nodes of one process each, on this machine: torchrun's c10d rendezvous at node 0's address. Each node
    has its own run folder with the same spec, as two boxes would; the run is written into node 0's alone, its
    sharded optimizer state gathered there (node 1's ranks could not write into node 0's folder)."""
    import shutil

    from engine.spec import dump_spec, load_spec
    from engine.train.checkpoint import OPTIMIZER_BY_NAME

    node0 = make_run(tmp_path, tiny_model_dir, max_steps=3, eval_every=0, save_every=2, micro_batch=2)
    spec = load_spec(node0 / "spec.toml")
    spec.train.strategy = "fsdp"
    (node0 / "spec.toml").write_text(dump_spec(spec))
    node1 = tmp_path / "on-the-other-box" / node0.name
    shutil.copytree(node0, node1)
    port = unused_port()
    env = cli_env(home, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "engine", "run", str(folder), "--nodes", "2", "--node-rank",
                               str(rank), "--rdzv-endpoint", f"127.0.0.1:{port}"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for rank, folder in enumerate((node0, node1))]
    outputs = outputs_within(procs, seconds=300)
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    events = read_events(node0 / "events.jsonl")
    [started] = [e for e in events if e["type"] == "started"]
    assert started["devices"] == 2 and started["effective_batch"] == 4 and events[-1]["status"] == "completed"
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1, 2, 3]
    assert not (node1 / "events.jsonl").exists() and not (node1 / "checkpoints").exists()  # node 1 writes nothing
    assert started["strategy"] == "fsdp"
    [(step, folder, _)] = list_checkpoints(node0)
    assert step == 2
    assert load_state(folder)["optimizer_keys"] == OPTIMIZER_BY_NAME and not (folder / "optimizer").exists()


def outputs_within(procs: list[subprocess.Popen[str]], seconds: float) -> list[str]:
    """Each process's output once all have ended; past `seconds`, every process tree is killed and the test fails
    with what each printed (a hung node shows why, and leaves nothing running)."""
    deadline = time.monotonic() + seconds
    outputs: list[str] = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        printed = [proc.communicate()[0] for proc in procs[len(outputs):]]
        pytest.fail(f"not done within {seconds:.0f} s:\n" + "\n".join(
            f"--- process {i}:\n{text[-3000:]}" for i, text in enumerate([*outputs, *printed])))
    return outputs


def test_several_machines_need_a_meeting_point(tmp_path: Path, home: Path, tiny_model_dir: Path) -> None:
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=3)
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir), "--nodes", "2"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=cli_env(home))
    assert proc.returncode == 2 and "needs train.rdzv_endpoint" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (run_dir / "events.jsonl").exists()


def test_one_rank_out_of_memory_ends_the_run_naming_it_and_no_rank_hangs(tmp_path: Path, home: Path,
                                                                          tiny_model_dir: Path) -> None:
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=6, eval_every=0, save_every=0, devices=2,
                       micro_batch=2, on_oom="stop")
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=cli_env(home, OMP_NUM_THREADS="1",
                                                               SLMTUI_TEST_OOM_AT_STEP="2@1"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    events = read_events(run_dir / "events.jsonl")
    [finished] = [e for e in events if e["type"] == "finished"]
    assert finished["status"] == "oom", finished
    assert finished["summary"]["message"].startswith("Rank 1 ran out of memory at step 3")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "oom"


def test_a_rank_killed_mid_run_ends_the_run_naming_it(tmp_path: Path, home: Path, tiny_model_dir: Path) -> None:
    """SIGKILL leaves no word from the rank: rank 0, its collective broken, finds which rank's process is gone."""
    import psutil

    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=5000, eval_every=0, save_every=0, devices=2,
                       micro_batch=2)
    engine = subprocess.Popen([sys.executable, "-m", "engine", "run", str(run_dir)], cwd=REPO,
                              env=cli_env(home, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any(e["type"] == "metrics" and e["step"] >= 3 for e in read_events(run_dir / "events.jsonl")):
            assert engine.poll() is None and time.monotonic() < deadline, "the run never reached step 3"
            time.sleep(0.2)
        ranks = {p.environ().get("RANK"): p for p in psutil.Process(engine.pid).children(recursive=True)
                 if "engine" in p.cmdline() and p.environ().get("RANK") is not None}
        os.kill(ranks["1"].pid, signal.SIGKILL)
        output = engine.communicate(timeout=120)[0]
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    assert engine.returncode != 0, output[-3000:]
    [finished] = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "finished"]
    assert finished["status"] == "failed", finished
    assert finished["summary"]["message"].startswith("Rank 1 ended without a word at step "), finished
    assert "killed, or it crashed outside Python" in finished["summary"]["message"]


def test_a_rank_ends_with_its_output_flushed_and_no_interpreter_teardown(tmp_path: Path) -> None:
    """A rank leaves without the teardown that once aborted a finished rank, and loses nothing it printed or
    logged on the way out."""
    script = (
        "import atexit, logging, sys\n"
        "from engine.train.distributed import end_rank\n"
        "logging.basicConfig(filename=sys.argv[1], level=logging.INFO)\n"
        "atexit.register(lambda: print('teardown ran'))\n"
        "print('last words', end='')\n"
        "sys.stderr.write('last error')\n"
        "logging.getLogger('rank').info('last log line')\n"
        "end_rank(3)\n"
    )
    log = tmp_path / "rank.log"
    proc = subprocess.run([sys.executable, "-c", script, str(log)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert (proc.returncode, proc.stdout) == (3, "last words"), proc.stderr
    assert proc.stderr.endswith("last error") and "last log line" in log.read_text()
