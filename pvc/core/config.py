"""config: read and change `.pvc/config` through its table of known keys (pvc/store/config.py).

Reading works on a config that has problems (that is how they get fixed); a change is written atomically under
the writers' lock, and refused when it would add a problem, so a store never gets a config pvc cannot use.
"""

from __future__ import annotations

from typing import Any

from pvc.errors import UsageError
from pvc.record import record
from pvc.store import config as schema
from pvc.store.repository import Repository

__all__ = ["ConfigEntry", "ConfigListing", "ConfigChange", "list_config", "get_config", "set_config", "unset_config"]


@record(frozen=True)
class ConfigEntry:
    key: str
    value: Any  # what pvc uses: the file's value, else the default
    default: Any
    set: bool  # the file sets it
    help: str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "default": self.default, "set": self.set, "help": self.help}


@record(frozen=True)
class ConfigListing:
    path: str
    entries: list[ConfigEntry]
    problems: list[tuple[str, str]]  # (key, what is wrong): verify reports them, every other command stops

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "settings": [e.to_json() for e in self.entries],
                "problems": [{"key": k, "what": w} for k, w in self.problems]}


@record(frozen=True)
class ConfigChange:
    key: str
    value: Any  # after the change (the default after an unset)
    previous: Any

    @property
    def changed(self) -> bool:
        return self.value != self.previous

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "previous": self.previous, "changed": self.changed}


def list_config(repo: Repository) -> ConfigListing:
    """Every known setting and section with its value, and the config's problems."""
    doc = repo.config_doc
    entries = [get_config(repo, key) for key in [*schema.SETTINGS, *schema.SECTIONS]]
    return ConfigListing(str(repo.config_path), entries, schema.problems(doc))


def get_config(repo: Repository, key: str) -> ConfigEntry:
    """One key (dotted for sections: `remotes.origin.url`)."""
    value, default, present = schema.lookup(repo.config_doc, key)
    return ConfigEntry(key, value, default, present, _help(key))


def set_config(repo: Repository, key: str, value: Any, *, lock_timeout: float = 60.0) -> ConfigChange:
    """Set `key` to `value` (text from a command line is read as the key's type: `16MiB`, `a,b`)."""
    if isinstance(value, str):
        value = schema.parse_value(key, value)
    with repo.lock(lock_timeout):
        doc = repo.read_config_doc()
        new = schema.with_value(doc, key, value)
        repo.write_config(new)
    return ConfigChange(key, _current(new, key), _current(doc, key))


def unset_config(repo: Repository, key: str, *, lock_timeout: float = 60.0) -> ConfigChange:
    """Remove `key` from the file, so that it takes its default (also a misspelt key pvc does not know)."""
    with repo.lock(lock_timeout):
        doc = repo.read_config_doc()
        new = schema.without_key(doc, key)
        repo.write_config(new)
    return ConfigChange(key, _current(new, key), _current(doc, key))


def _current(doc: dict, key: str) -> Any:
    """What pvc takes for `key` in `doc`; for a key it does not know, what the file holds there."""
    try:
        return schema.lookup(doc, key)[0]
    except UsageError:
        node: Any = doc
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node


def _help(key: str) -> str:
    parts = key.split(".")
    if parts[0] in schema.SETTINGS:
        return schema.SETTINGS[parts[0]].help
    section = schema.SECTIONS[parts[0]]
    return section.fields[parts[2]].help if len(parts) == 3 else section.help
