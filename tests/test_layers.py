"""The package's shape holds: imports flow one way between layers, and modules stay small.

0  errors, models, config        no internal imports but each other
1  store                         the only SQL
2  edition, intake               pure transforms
3  mail                          the network
4  operations                    composes 1-3
5  cli, web, service             entry points
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
LAYERS: dict[str, int] = {
    "errors": 0, "models": 0, "config": 0, "rules": 0,
    "store": 1,
    "edition": 2, "intake": 2,
    "mail": 3,
    "operations": 4,
    "cli": 5, "web": 5, "service": 5, "__main__": 5,
}  # fmt: skip
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 12


def room(path: Path) -> str:
    """The layer entry a file belongs to: its sub-package, or its own name at the top."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_rooms(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "digest":
                names = [f"digest.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("digest.")}
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
IDS = [str(path.relative_to(PACKAGE)) for path in FILES]


def test_every_room_has_a_layer() -> None:
    rooms = {room(path) for path in FILES} - {"__init__"}
    assert rooms <= set(LAYERS), rooms - set(LAYERS)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_no_upward_import(path: Path) -> None:
    here = room(path)
    level = LAYERS.get(here, 0)
    upward = {name for name in imported_rooms(path) if LAYERS.get(name, 99) > level}
    assert not upward, f"{here} (layer {level}) imports {upward} from above"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{lines} lines: split it by responsibility"


def test_the_top_level_keeps_only_the_foundations() -> None:
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules
