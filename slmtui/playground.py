"""The playground's service: stream a model's answer from `python -m engine generate`, line by line.

`stream_generation` runs one engine process and hands each JSON line it prints (`ready`, `token`, `done`)
to a callback; the console runs two at once (the base and the fine-tuned model) in workers. Light: no
textual, no ML stack; the prompt goes over stdin, so it never shows in a process list.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OnLine = Callable[[dict[str, Any]], None]


class GenerationFailed(Exception):
    """The engine could not generate (a missing model, an empty prompt); one sentence."""


@dataclass(frozen=True)
class GenerationRequest:
    """One model answering one prompt. `base` asks for the base model of a run or adapter folder."""

    model: str
    prompt: str
    label: str = ""
    base: bool = False
    max_new_tokens: int = 128
    temperature: float = 0.0
    device: str = "auto"
    threads: int = 0

    def argv(self) -> list[str]:
        """Arguments of `python -m engine generate` (the prompt itself goes over stdin)."""
        args = ["--model", self.model, "--prompt", "-", "--label", self.label or self.model,
                "--max-new-tokens", str(self.max_new_tokens), "--temperature", str(self.temperature),
                "--device", self.device]
        if self.base:
            args.append("--base")
        if self.threads:
            args += ["--threads", str(self.threads)]
        return args


def stream_generation(request: GenerationRequest, on_line: OnLine, should_stop: Callable[[], bool] | None = None,
                      home: Path | None = None) -> dict[str, Any]:
    """Run the generation, calling `on_line` for each JSON line; returns the final `done` line.

    Raises `GenerationFailed` with the engine's sentence, or when `should_stop` asked to end early.
    """
    from slmtui.engine_proc import engine_command, engine_env

    if not request.prompt.strip():
        raise GenerationFailed("The prompt is empty; type something to send.")
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(engine_command("generate", *request.argv()), env=engine_env(home),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True, bufsize=1)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(request.prompt)
        proc.stdin.close()
        done: dict[str, Any] = {}
        for raw in proc.stdout:
            if should_stop is not None and should_stop():
                proc.terminate()
                proc.wait()
                raise GenerationFailed(f"The generation of {request.label or request.model} was stopped.")
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a library printing on stdout: not ours
            if isinstance(line, dict):
                on_line(line)
                if line.get("done"):
                    done = line
        proc.wait()
        if proc.returncode != 0 or not done:
            errors.seek(0)
            lines = [ln for ln in errors.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            raise GenerationFailed(lines[-1] if lines else f"The engine's generate ended with status {proc.returncode}.")
    return done


@dataclass(frozen=True)
class Pair:
    """The two sides of the playground: what each runs, and how each is named on screen."""

    left: GenerationRequest
    right: GenerationRequest


def run_pair(model: str, prompt: str, **options: Any) -> Pair:
    """A run's (or adapter's) base model on the left and the fine-tuned model on the right."""
    name = Path(model.rstrip("/")).name or model
    return Pair(GenerationRequest(model=model, prompt=prompt, label=f"base of {name}", base=True, **options),
                GenerationRequest(model=model, prompt=prompt, label=f"{name} (fine-tuned)", **options))


def model_pair(left: str, right: str, prompt: str, **options: Any) -> Pair:
    """Any two models side by side."""
    return Pair(GenerationRequest(model=left, prompt=prompt, label=left, **options),
                GenerationRequest(model=right, prompt=prompt, label=right, **options))


def default_pair(prompt: str, highlighted: str | None, shortlisted: list[str], runs: Path | None = None,
                 **options: Any) -> Pair | None:
    """What the playground compares: the highlighted run (or adapter) against its base; else the newest run
    with a final adapter against its base; else the highlighted model against the next shortlisted one."""
    from engine.protocol import SPEC_FILE

    def has_adapter(folder: Path) -> bool:
        return (folder / "adapter" / "adapter_config.json").is_file() or (folder / "adapter_config.json").is_file()

    if highlighted and Path(highlighted).expanduser().is_dir() and has_adapter(Path(highlighted).expanduser()):
        return run_pair(highlighted, prompt, **options)
    if runs is not None and runs.is_dir():
        trained = sorted(p for p in runs.iterdir() if (p / SPEC_FILE).is_file() and has_adapter(p))
        if trained:
            return run_pair(str(trained[-1]), prompt, **options)
    others = [m for m in shortlisted if m != highlighted]
    if highlighted and others:
        return model_pair(highlighted, others[0], prompt, **options)
    return None
