#!/usr/bin/env bash
# The whole test suite: lint, types, layering contracts, then pytest. `make test` runs it after set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" && ruff check slmtui screens engine themes tests bench
echo "== mypy" && mypy
echo "== import-linter" && lint-imports
echo "== pytest" && python -m pytest "$@"
