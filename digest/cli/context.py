"""What every command shares: the consoles, and the settings, store and Publisher made from the
root command's `--config` once, on first use (so `--help` and usage errors touch neither).

The command modules import the layers below (pydantic, SQLAlchemy, Jinja2 ...) inside the
commands, not at the top: `digest --help` and a mistyped option load none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.operations.publisher import Publisher
    from digest.store import Store

# Markup off: titles, names and replies are user text, and "[/b]" in one must print as is.
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


class Context:
    """The root callback puts one in `ctx.obj`; commands read it through `context(ctx)`."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None
        self._store: Store | None = None
        self._publisher: Publisher | None = None

    @property
    def settings(self) -> Settings:
        """The config file (or $DIGEST_CONFIG, or config/digest.toml) and DIGEST_* variables."""
        if self._settings is None:
            from digest.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    @property
    def publisher(self) -> Publisher:
        """The operations on these settings, with their own store."""
        if self._publisher is None:
            from digest.operations.publisher import Publisher

            self._publisher = Publisher(self.settings)
        return self._publisher

    @property
    def store(self) -> Store:
        """The database alone, for commands that need no more (the Publisher's, once it exists)."""
        if self._publisher is not None:
            return self._publisher.store
        if self._store is None:
            from digest.store import Store
            from digest.store.schema import make_engine

            self._store = Store(make_engine(self.settings.database_url))
        return self._store


def context(ctx: typer.Context) -> Context:
    """The running command's shared context."""
    root = ctx.find_root()
    if not isinstance(root.obj, Context):  # a command invoked without the root callback
        root.obj = Context(root.params.get("config"))
    return root.obj
