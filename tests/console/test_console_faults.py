"""The console meets a store written by a newer slmtui: one sentence saying so, no crash, the file untouched."""

from __future__ import annotations

import json
from pathlib import Path

from console_helpers import wait_for

from slmtui.app import SlmtuiApp
from slmtui.store import Store
from slmtui.ui.registry import default_registry


async def test_a_store_from_a_newer_schema_is_one_sentence_on_every_screen(home: Path) -> None:
    Store(home).add_entry("written by this version")
    data = json.loads((home / "slmtui.json").read_text())
    data["meta"]["1"]["schema"] = 99
    (home / "slmtui.json").write_text(json.dumps(data))
    before = (home / "slmtui.json").read_bytes()
    app = SlmtuiApp(home=home)
    async with app.run_test(size=(100, 30)) as pilot:
        for entry in default_registry().available():
            app.action_show_screen(entry.slug)
            await wait_for(pilot, lambda slug=entry.slug: app.current_screen_name == slug, what=entry.name)
        await wait_for(pilot, lambda: any("newer slmtui" in str(n.message) for n in app._notifications),
                       what="the newer-schema sentence")
        await pilot.pause(0.2)  # long-lived workers (the monitor feed) never complete: let short ones settle
        messages = [str(n.message) for n in app._notifications if "newer slmtui" in str(n.message)]
        assert app.is_running and all("\n" not in m for m in messages)
        await pilot.press("ctrl+t")  # a write the store must refuse rather than downgrade the file
        await pilot.pause(0.2)  # long-lived workers (the monitor feed) never complete: let short ones settle
    assert (home / "slmtui.json").read_bytes() == before
