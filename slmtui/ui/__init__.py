"""The console's shell pieces: theme loading, the screen registry, the shell screen, worker helpers."""
