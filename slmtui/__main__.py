"""`python -m slmtui` is the `slmtui` command."""

from slmtui.cli import main

raise SystemExit(main())
