"""What every command shares: the consoles, and the settings, store and App made from the
root command's `--config` once, on first use (so `--help` and usage errors touch neither)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from digest.config import Settings, load_settings
from digest.operations.app import App
from digest.store import Store
from digest.store.schema import make_engine

# Markup off: titles, names and replies are user text, and "[/b]" in one must print as is.
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


class Context:
    """The root callback puts one in `ctx.obj`; commands read it through `context(ctx)`."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None
        self._store: Store | None = None
        self._app: App | None = None

    @property
    def settings(self) -> Settings:
        """The config file (or $DIGEST_CONFIG, or config/digest.toml) and DIGEST_* variables."""
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    @property
    def app(self) -> App:
        """The operations on these settings, with their own store."""
        if self._app is None:
            self._app = App(self.settings)
        return self._app

    @property
    def store(self) -> Store:
        """The database alone, for commands that need no more (the App's, once it exists)."""
        if self._app is not None:
            return self._app.store
        if self._store is None:
            self._store = Store(make_engine(self.settings.database_url))
        return self._store


def context(ctx: typer.Context) -> Context:
    """The running command's shared context."""
    root = ctx.find_root()
    if not isinstance(root.obj, Context):  # a command invoked without the root callback
        root.obj = Context(root.params.get("config"))
    return root.obj
