"""The headless side of slmtui: data, models, training and its subcommands.

Importing this package is light: only the modules that need the ML stack import it, and only when used.
"""
