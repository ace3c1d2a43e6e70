"""pyproject.toml's ranges for transformers and peft against doctor's table of what transformers wants from
peft: a fresh set-up (the newest versions the ranges admit) must install a pair doctor accepts."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from engine.commands.doctor import PEFT_MINIMUM_FOR_TRANSFORMERS, diagnose, known_peft_minimum
from tests.conftest import REPO
from tests.test_export_doctor import facts


def pyproject_ranges() -> dict[str, SpecifierSet]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {(req := Requirement(text)).name.lower(): req.specifier for text in project["dependencies"]}


def bound(spec: SpecifierSet, operators: tuple[str, ...], pick: Callable[[list[Version]], Version]) -> Version | None:
    versions = [Version(s.version) for s in spec if s.operator in operators]
    return pick(versions) if versions else None


def test_no_transformers_the_range_admits_wants_a_peft_older_than_the_range_admits() -> None:
    ranges = pyproject_ranges()
    newest_excluded = bound(ranges["transformers"], ("<", "<="), min)
    oldest_peft = bound(ranges["peft"], (">=", ">", "=="), max)
    assert oldest_peft is not None, "peft needs a lower bound doctor's table can be checked against"
    for since, peft in PEFT_MINIMUM_FOR_TRANSFORMERS:
        if newest_excluded is None or Version(since) < newest_excluded:
            assert oldest_peft >= Version(peft), (
                f"pyproject.toml admits transformers {since}, which wants peft >= {peft}, with peft {oldest_peft}")


def test_the_pair_a_fresh_setup_installs_gets_no_peft_warning() -> None:
    ranges = pyproject_ranges()
    newest_transformers = max(v for v in ("5.23.0", "5.24.0", "6.0.0") if ranges["transformers"].contains(v))
    newest_peft = "0.21.2"  # the newest peft released
    assert ranges["peft"].contains(newest_peft)
    found = diagnose(facts(env={"transformers": newest_transformers, "peft": newest_peft},
                           transformers_min_peft=None))
    assert not [p for p in found if "wants peft" in p["problem"]]


def test_the_table_flags_the_pair_the_issue_saw_and_is_in_order() -> None:
    assert [Version(since) for since, _ in PEFT_MINIMUM_FOR_TRANSFORMERS] == sorted(
        Version(since) for since, _ in PEFT_MINIMUM_FOR_TRANSFORMERS)
    assert known_peft_minimum("5.24.0") == "0.22.0" and known_peft_minimum("5.23.0") == "0.20.0"
    assert known_peft_minimum("4.57.6") is None and known_peft_minimum(None) is None
    found = diagnose(facts(env={"transformers": "5.24.0", "peft": "0.21.2"}, transformers_min_peft=None))
    assert [p["severity"] for p in found if "wants peft >= 0.22.0" in p["problem"]] == ["warning"]


def test_the_table_agrees_with_the_installed_transformers() -> None:
    integration = pytest.importorskip("transformers.integrations.peft")
    installed = metadata.version("transformers")
    wanted, known = getattr(integration, "MIN_PEFT_VERSION", None), known_peft_minimum(installed)
    if known is None:  # older than the table: what it wants is older than anything the table names
        assert wanted is None or Version(wanted) < Version(PEFT_MINIMUM_FOR_TRANSFORMERS[0][1])
    else:
        assert known == wanted, f"transformers {installed} wants peft >= {wanted}: update the doctor's table"
