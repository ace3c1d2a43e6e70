"""The engine's subcommands, one module each, run as `python -m engine NAME`."""
