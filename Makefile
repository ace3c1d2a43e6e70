# The two commands of the README's quick start, and a few for development.
.PHONY: demo test setup lint

demo: setup ## set up, build the demo once and open the console on it
	.venv/bin/slmtui demo

test: setup ## set up and run the whole suite (lint, types, layering, tests)
	bash scripts/check.sh

setup:
	bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check slmtui screens engine themes tests bench && .venv/bin/mypy && .venv/bin/lint-imports
