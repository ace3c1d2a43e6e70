#!/usr/bin/env bash
# Create .venv and install slmtui with its development tools, once (again only when pyproject.toml changes).
# Where no NVIDIA GPU is present it installs the CPU build of torch first; on a GPU box the range in
# pyproject.toml brings the regular CUDA build from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.slmtui-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "slmtui: setting up .venv (first time only; a few minutes)" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "slmtui: NVIDIA GPU found: installing the CUDA build of torch" >&2
else
    echo "slmtui: no NVIDIA GPU: installing the CPU build of torch" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
echo "$want" > "$stamp"
