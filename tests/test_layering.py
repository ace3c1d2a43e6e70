"""The layering rules of docs/architecture.md that import-linter cannot see, checked in fresh interpreters."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, cli_env

ML_STACK = ("torch", "transformers", "peft", "bitsandbytes", "datasets", "accelerate", "tokenizers", "tensorboard",
            "mlflow", "wandb")


def _modules_after(code: str, home: Path) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], env=cli_env(home), capture_output=True, text=True,
                         cwd=REPO, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import slmtui.app",
        "import screens.checklist, slmtui.checklist",
        "import screens.gpus, screens.new_run, slmtui.new_run, slmtui.data_service, slmtui.launch\n"
        "from slmtui.fit import resolve_shape, fit_table\nfit_table(24.0, 1024)\ntry:\n    resolve_shape('a/b')\n"
        "except Exception:\n    pass",
        "import slmtui.cli as c; c.build_parser()",
        "import slmtui.cli.serve, slmtui.web_console",
        "import screens.journal, slmtui.sweep, slmtui.sweeps, slmtui.cli.sweep\n"
        "import optuna, optuna.importance, optuna.storages.journal, optuna.samplers, optuna.pruners",
        "import slmtui.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n    pass",
    ],
)
def test_the_console_and_cli_never_load_the_ml_stack(code: str, home: Path) -> None:
    loaded = _modules_after(code, home)
    assert not {m for m in loaded if m.split(".")[0] in ML_STACK}


def test_python_m_engine_is_this_project(home: Path) -> None:
    code = "import engine, engine.__main__ as m; print(engine.__file__); print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=cli_env(home), capture_output=True, text=True,
                         cwd="/", check=True).stdout.split()
    assert all(Path(p).resolve().is_relative_to(REPO) for p in out)
    help_out = subprocess.run([sys.executable, "-m", "engine", "--help"], env=cli_env(home), capture_output=True,
                              text=True, cwd="/", check=True).stdout
    assert "usage: python -m engine" in help_out


def _imported_names(path: Path) -> set[str]:
    """The top-level packages `path` imports, by statement or by a string naming the module
    (`importlib.import_module("x")`, `__import__("x")`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _imports_by_name(node) and isinstance(arg := node.args[0], ast.Constant) and isinstance(arg.value, str):
            names.add(arg.value.split(".")[0])
    return names


def _imports_by_name(node: ast.AST) -> bool:
    """Whether `node` is a call that imports a module named by a string (import-linter cannot see those)."""
    if not isinstance(node, ast.Call) or not node.args:
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name in ("import_module", "__import__")


def _console_files() -> list[Path]:
    return [*(REPO / "slmtui").rglob("*.py"), *(REPO / "screens").rglob("*.py")]


def test_screens_never_spawn_processes_or_touch_the_database() -> None:
    """import-linter skips the standard library; screens must still never use subprocess."""
    offenders = {
        str(p.relative_to(REPO)): sorted(_imported_names(p) & {"subprocess", "tinydb", "pynvml", *ML_STACK})
        for p in (REPO / "screens").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_gpu_module_imports_pynvml() -> None:
    users = [str(p.relative_to(REPO)) for p in _console_files() if "pynvml" in _imported_names(p)]
    assert users == ["slmtui/gpu.py"]


def test_nvml_is_loaded_only_when_the_gpus_are_read(home: Path) -> None:
    loaded = _modules_after("import slmtui.app, slmtui.cli, screens.gpus, screens.new_run, screens.monitor\n"
                            "import slmtui.cli as c; c.build_parser()", home)
    assert "pynvml" not in loaded


def test_every_import_of_the_console_is_one_import_linter_sees() -> None:
    """A module named by a string escapes every contract; the one allowed is the keymap's walk over the modules
    of packages it imports itself (to collect every binding id)."""
    hidden = sorted(str(p.relative_to(REPO)) for p in _console_files()
                    if any(_imports_by_name(node) for node in ast.walk(ast.parse(p.read_text()))))
    assert hidden == ["slmtui/ui/keymap.py"]


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["name"]: contract for contract in config["contracts"]}


def _layers() -> list[set[str]]:
    layers = next(c["layers"] for c in _contracts().values() if c["type"] == "layers")
    assert isinstance(layers, list)
    return [{module.strip() for module in layer.split(":")} for layer in layers]


def test_every_slmtui_module_has_a_layer() -> None:
    """A module in no layer escapes the layers contract: each module and package of slmtui is in one."""
    modules = {f"slmtui.{p.stem}" for p in (REPO / "slmtui").iterdir()
               if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.stem not in ("__init__", "__main__")}
    placed = [module for layer in _layers() for module in layer]
    assert sorted(m for m in placed if m.startswith("slmtui.")) == sorted(modules)


def test_the_services_that_never_import_textual_are_the_services_layer() -> None:
    services = next(layer for layer in _layers() if "slmtui.store" in layer)
    assert set(_contracts()["Services never import textual"]["source_modules"]) == services
