"""docs/architecture.md names only files and modules that exist (fast: reads text, imports nothing)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "architecture.md"
ROOTS = ("slmtui", "screens", "engine", "themes", "tests", "docs", "bench", "scripts")
ROOT_FILES = ("README.md", "pyproject.toml", "Makefile")
PACKAGES = ("slmtui", "screens", "engine", "themes")
#: Dotted spans that are file names (`engine.pid`, `slmtui.json`), not modules.
FILE_SUFFIXES = ("pid", "lock", "log", "json", "jsonl", "toml", "md", "py", "tcss")


def _code_spans() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # the layer sketch is not a list of names
    return re.findall(r"`([^`\n]+)`", text)


def _repo_path(span: str) -> str | None:
    """A span that names a repository path (`engine/protocol.py`, `screens/widgets/`), else None."""
    if span in ROOT_FILES:
        return span
    if "/" in span and span.split("/", 1)[0] in ROOTS and not any(c in span for c in " <>*(){}"):
        return span.rstrip("/")
    return None


def _module_exists(dotted: str) -> bool:
    """`engine.spec.load_spec`: a module or package, optionally followed by one name its source mentions."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if source.is_file():
            rest = parts[cut:]
            if not rest:
                return True
            return len(rest) == 1 and re.search(rf"\b{re.escape(rest[0])}\b", source.read_text()) is not None
    return False


def test_every_path_the_architecture_doc_names_exists() -> None:
    missing = [p for p in filter(None, map(_repo_path, _code_spans())) if not (REPO / p).exists()]
    assert missing == []


def test_every_module_the_architecture_doc_names_exists() -> None:
    dotted = [s for s in _code_spans() if re.fullmatch(rf"(?:{'|'.join(PACKAGES)})(?:\.\w+)+", s)
              and s.rsplit(".", 1)[1] not in FILE_SUFFIXES]
    assert dotted, "the doc names no modules: has the pattern stopped matching?"
    assert [s for s in dotted if not _module_exists(s)] == []


def test_the_doc_names_paths() -> None:
    assert len([p for p in map(_repo_path, _code_spans()) if p]) > 50
