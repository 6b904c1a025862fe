"""The local secrets file: the unsubscribe key `digest init` makes when none is configured.

config/digest.toml is shared and committed, so a key in it is everybody's key: anyone could
forge unsubscribe links for the sequential subscriber ids and empty a list. The secrets file is
TOML in the same shape (`[site] unsubscribe_secret = "..."`), read after the config file and
before the environment, and only its owner may read it.

The same holds for every file that carries a reader's address or token (previews, captured
mail): `write_private` makes them mode 0600 whatever the umask.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

from digest.errors import ConfigError

DEFAULT_SECRETS_FILE = Path("var/secrets.toml")


def read_secrets(path: Path) -> dict[str, Any]:
    """The settings the file at `path` holds ({} when there is none); a file others can read
    is refused, as a DKIM key is."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & 0o077:
        raise ConfigError(
            f"secrets file {path} is readable by others (mode {mode & 0o777:04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"secrets file {path} cannot be read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def write_new_secret(path: Path) -> None:
    """Create the file at `path` (mode 0600) with a random unsubscribe secret; never overwrite."""
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(
            f"secrets file {path} exists but sets no [site] unsubscribe_secret: add one, "
            "or move the file away and run `digest init` again"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot create secrets file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(
            "# Made by `digest init`. Keep it: a new secret breaks the unsubscribe links in\n"
            "# mail already sent (see previous_unsubscribe_secrets to rotate).\n"
            f'[site]\nunsubscribe_secret = "{secret}"\n'
        )


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by its owner only (0600), also when it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a file made earlier keeps its mode on O_CREAT
        handle.write(data)


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on it, table by table."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result
