"""Text from outside never drives the terminal or reads as markup: `visible` itself, and the CLI end to end.

Each example reported in issue 14 (erase the screen, OSC 52 into the clipboard, OSC 0 window title, `[/]x`
that broke `journal list`, `[link=...]`) is a regression test; hypothesis then feeds random strings built from
control characters, escape sequences and markup through `journal add`/`journal list` and `data check`.
Output is read as bytes: text mode would turn a raw carriage return into a newline and hide it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.safe_text import safe_json_dumps, visible, visible_line, visible_tree
from tests.conftest import REPO, cli_env

#: Anything a terminal could obey: C0 but newline and tab, DEL, C1.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: The reported attacks, with the visible form each must show as.
ATTACKS = {
    "erase screen": ("A\x1b[2J", "A␛[2J"),
    "OSC 52 clipboard": ("\x1b]52;c;cHduZWQ=\x07", "␛]52;c;cHduZWQ=␇"),
    "OSC 0 window title": ("\x1b]0;TITLE\x1b\\", "␛]0;TITLE␛\\"),
    "C1 CSI": ("x\x9b2J", "x\\x9b2J"),
}
MARKUP = ("[/]x", "[link=http://evil]x[/link]", "[bold]not bold[/bold]", ":smile:")

#: Pieces random strings are built from: escape sequences, lone controls, markup, ordinary text.
PIECES = st.sampled_from([
    "\x1b[2J", "\x1b]52;c;cHduZWQ=\x07", "\x1b]0;T\x1b\\", "\x1b", "\x9b", "\x9d", "\x7f", "\r", "\x08", "\x00",
    "\n", "\t", "[/]", "[link=http://evil]", "[/link]", "[b]", "[", "]", "\\", ":smile:", "%s", "{x}",
])
HOSTILE = st.lists(PIECES | st.text(st.characters(exclude_categories=["Cs"]), max_size=4), max_size=8).map("".join)


def run(home: Path, *args: str) -> tuple[int, str, str]:
    """`python -m slmtui ARGS` with its output as bytes, decoded strictly (raw bytes would fail here)."""
    proc = subprocess.run([sys.executable, "-m", "slmtui", *args], env=cli_env(home), capture_output=True,
                          timeout=120, cwd=REPO)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


def assert_inert(*outputs: str) -> None:
    for out in outputs:
        found = RAW_CONTROL.search(out)
        assert found is None, f"raw {found.group()!r} reached the terminal in {out!r}"
        assert "Traceback" not in out


# ---------------------------------------------------------------- visible itself


@pytest.mark.parametrize(("raw", "shown"), [*ATTACKS.values(), ("a\r\nb", "a\nb"), ("a\rb", "a␍b"),
                                            ("\x00\x7f", "␀␡"), ("tab\there", "tab\there"), ("ünï ✓", "ünï ✓")])
def test_visible_shows_controls_as_signs(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_a_single_line_keeps_newlines_and_tabs_visible() -> None:
    assert visible_line("a\nb\tc") == "a␊b␉c"
    assert visible_line(3) == "3"


@given(st.text())
def test_visible_leaves_no_control_and_changes_nothing_else(text: str) -> None:
    shown = visible(text, multiline=False)
    assert RAW_CONTROL.search(shown) is None and "\n" not in shown and "\t" not in shown
    assert visible(shown, multiline=False) == shown  # idempotent: a second pass changes nothing
    if RAW_CONTROL.search(text) is None and "\n" not in text and "\t" not in text:
        assert shown == text


def test_visible_tree_reaches_keys_and_nested_values() -> None:
    tree = {"a\x1b": ["\x9b", {"k": "\x07"}], "n": 3, "none": None}
    assert visible_tree(tree) == {"a␛": ["\\x9b", {"k": "␇"}], "n": 3, "none": None}


@given(st.recursive(st.text() | st.integers(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=10))
def test_safe_json_has_no_raw_control_and_decodes_to_the_same_value(value: object) -> None:
    text = safe_json_dumps(value)
    assert RAW_CONTROL.search(text) is None
    assert json.loads(text) == value


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("name", ATTACKS)
def test_journal_list_shows_escape_sequences_instead_of_obeying_them(home: Path, name: str) -> None:
    raw, shown = ATTACKS[name]
    assert run(home, "journal", "add", raw)[0] == 0
    code, out, err = run(home, "journal", "list")
    assert code == 0
    assert_inert(out, err)
    assert shown in out
    code, out, _ = run(home, "journal", "list", "--json")
    assert_inert(out)
    assert json.loads(out)["entries"][0]["text"] == raw  # stored and exported as typed


@pytest.mark.parametrize("text", MARKUP)
def test_journal_text_is_never_markup(home: Path, text: str) -> None:
    assert run(home, "journal", "add", text)[0] == 0
    assert run(home, "journal", "add", "after it")[0] == 0
    code, out, err = run(home, "journal", "list")
    assert (code, err) == (0, "")
    assert text in out and "after it" in out


def test_a_user_error_echoing_a_path_shows_its_controls(home: Path, tmp_path: Path) -> None:
    code, out, err = run(home, "data", "check", str(tmp_path / "nope\x1b[2J"))
    assert code == 1 and "nope␛[2J" in err
    assert_inert(out, err)


def hostile_rows(path: Path) -> Path:
    rows = [{"prompt": f"{raw} [/]x {markup}", "completion": f"ok {raw}", "label": raw}
            for raw, _ in ATTACKS.values() for markup in MARKUP[1:2]]
    rows.append({"prompt": "\x1b[31m no completion"})  # an invalid row whose reason may echo the data
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_data_check_shows_hostile_rows_as_text(home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    src = hostile_rows(tmp_path / "bad\x1b[2J.jsonl")
    code, out, err = run(home, "data", "check", str(src), "--tokenizer", str(tiny_model_dir))
    assert code == 0, err
    assert_inert(out, err)
    assert "␛[2J" in out and "[link=http://evil]x[/link]" in out and "\\x9b" in out
    code, out, err = run(home, "data", "check", str(src), "--tokenizer", str(tiny_model_dir), "--json")
    assert_inert(out, err)
    assert json.loads(out)["source"]["path"].endswith("bad\x1b[2J.jsonl")


# ---------------------------------------------------------------- fuzz


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=HOSTILE)
def test_fuzz_journal_add_and_list(home: Path, text: str) -> None:
    text = text.replace("\x00", "")  # an argument cannot hold NUL
    code, out, err = run(home, "journal", "add", text)
    assert_inert(out, err)
    code, out, err = run(home, "journal", "list")
    assert code == 0
    assert_inert(out, err)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(HOSTILE, min_size=1, max_size=6))
def test_fuzz_data_check(home: Path, tmp_path: Path, tiny_model_dir: Path, cells: list[str]) -> None:
    src = tmp_path / "fuzz.jsonl"
    src.write_text("\n".join(json.dumps({"prompt": c or "p", "completion": c[::-1], "label": c[:3]})
                             for c in cells) + "\n", encoding="utf-8")
    code, out, err = run(home, "data", "check", str(src), "--tokenizer", str(tiny_model_dir))
    assert code == 0, err
    assert_inert(out, err)
