"""The demo dataset shipped with the engine (a package so it is installed); made by scripts/make_demo_dataset.py."""
