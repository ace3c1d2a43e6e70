"""The user's keymap: `HOME/keymap.toml`, one `binding_id = "key"` line per key to change.

```toml
journal.add = "ctrl+n"
"app.theme" = "f5"            # quoted or not, the same id
"journal.delete" = "d,x"      # several keys: comma-separated
```

Ids are those the key-help screen (`f1`) shows. Textual applies the map (`App.set_keymap`) to every binding
with that id. A file that cannot be read, a value that is not a key, or an id no binding has is said in one
notification sentence; the rest of the file still applies.
"""

from __future__ import annotations

import pkgutil
import re
import tomllib
from importlib import import_module
from pathlib import Path

KEYMAP_FILE = "keymap.toml"
#: One key as Textual names it: `a`, `f5`, `ctrl+shift+x`, `question_mark`, `?`.
_KEY = re.compile(r"^(?:[a-z]+\+)*(?:[a-z0-9_]+|[^\s,+])$", re.IGNORECASE)


def read_keymap(path: Path) -> tuple[dict[str, str], str | None]:
    """The keymap in `path` (empty when there is none) and what is wrong with it (None: nothing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return {}, f"The keymap {path} cannot be read ({why}), so the default keys are in use."
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return {}, (f"The keymap {path} is not valid TOML ({exc}), so the default keys are in use; write one "
                    '`"binding.id" = "key"` line per key.')
    keymap: dict[str, str] = {}
    bad: list[str] = []
    for binding_id, value in _flatten(data).items():
        keys = ",".join(part.strip() for part in value.split(",")) if isinstance(value, str) else ""
        if keys and all(_KEY.match(key) for key in keys.split(",")):
            keymap[binding_id] = keys
        else:
            bad.append(binding_id)
    if bad:
        return keymap, (f"The keymap {path} gives {', '.join(sorted(bad))} no key it can use; write a key in "
                        'quotes, such as "ctrl+e" or "f5" (the other lines apply).')
    return keymap, None


def _flatten(data: dict[str, object], prefix: str = "") -> dict[str, object]:
    """`journal.add = "x"` unquoted is TOML for a table `journal` holding `add`: the id is the dotted path."""
    flat: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def unknown_ids(keymap: dict[str, str], known: set[str]) -> str | None:
    """One sentence naming the keymap's ids that no binding has (None: every id is known)."""
    unknown = sorted(set(keymap) - known)
    if not unknown:
        return None
    return (f"The keymap names {', '.join(unknown)}, which no key has; f1 lists every key with its id "
            "(the other lines apply).")


def known_binding_ids() -> set[str]:
    """Every binding id of the console: imports every module of `screens` and `slmtui.ui` (slow: call it from a
    worker) and reads the `BINDINGS` of every widget, screen and app class loaded."""
    from textual.binding import Binding
    from textual.dom import DOMNode

    import screens
    import slmtui.app
    import slmtui.ui

    for package in (screens, slmtui.ui):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            import_module(module.name)
    ids: set[str] = {b.id for b in slmtui.app.SlmtuiApp.BINDINGS if isinstance(b, Binding) and b.id}
    pending: list[type[DOMNode]] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        ids |= {b.id for b in cls.__dict__.get("BINDINGS", ()) if isinstance(b, Binding) and b.id}
    return ids
