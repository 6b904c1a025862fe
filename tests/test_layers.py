"""Imports flow one way: a module may import only from its own layer or a lower one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
LAYERS: dict[str, int] = {
    "errors": 0, "models": 0, "runs": 0, "timing": 2,
    "scheduler": 5, "cli_run": 5, "log_format": 5,
    "config": 1, "schema": 1, "store": 1,
    "articles": 2, "people": 2, "selection": 2, "render": 2, "message": 2, "tokens": 2,
    "feeds": 2, "feed_formats": 2, "pacing": 2, "dkim": 2, "bounces": 2,
    "transport": 3, "replies": 3, "fetching": 3,
    "pipeline": 4, "delivery": 4, "seeding": 4, "app": 4, "ingest": 4,
    "subscribing": 4, "bouncing": 4, "cli_subscribers": 5, "cli_bounces": 5,
    "cli": 5, "progress": 5, "capture": 5, "cli_articles": 5, "cli_dkim": 5, "__main__": 5,
    "signing": 2, "mail_confirm": 2, "confirmations": 4, "archive": 4,
    "web": 5, "web_context": 5, "web_guard": 5, "web_pages": 5, "web_signup": 5,
    "inbound": 5, "cli_web": 5,
    "migrations": 1,  # the package digest/migrations/: Alembic's env.py and the revisions
}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("digest."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.split(".")[1] for alias in node.names if alias.name.startswith("digest.")
            }
    return found


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def test_every_module_has_a_layer() -> None:
    assert set(MODULES) <= set(LAYERS), set(MODULES) - set(LAYERS)


@pytest.mark.parametrize("module", MODULES, ids=MODULES)
def test_no_upward_import(module: str) -> None:
    upward = {
        name
        for name in imports_of(PACKAGE / f"{module}.py")
        if LAYERS.get(name, 99) > LAYERS[module]
    }
    assert not upward, f"{module} (layer {LAYERS[module]}) imports {upward} from above"


MIGRATIONS = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "migrations").rglob("*.py"))


@pytest.mark.parametrize("path", MIGRATIONS, ids=MIGRATIONS)
def test_no_upward_import_in_the_migrations(path: str) -> None:
    upward = {
        name for name in imports_of(PACKAGE / path) if LAYERS.get(name, 99) > LAYERS["migrations"]
    }
    assert not upward, f"{path} (layer {LAYERS['migrations']}) imports {upward} from above"
