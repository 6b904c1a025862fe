"""Loading the settings, and saying in one line which file or variable holds a bad value."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError
from pydantic_settings.exceptions import SettingsError

from digest.config.secrets import DEFAULT_SECRETS_FILE, merged, read_secrets
from digest.config.settings import ENV_PREFIX, Settings
from digest.errors import ConfigError

DEFAULT_CONFIG = Path("config/digest.toml")


def load_settings(path: Path | None = None) -> Settings:
    """Read the TOML file (explicit path, $DIGEST_CONFIG, or config/digest.toml) and the env."""
    explicit = path or (
        Path(os.environ["DIGEST_CONFIG"]) if os.environ.get("DIGEST_CONFIG") else None
    )
    chosen = explicit or DEFAULT_CONFIG
    values: dict[str, Any] = {}
    if chosen.exists():
        try:
            values = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{chosen}: not valid TOML: {exc}") from exc
    elif explicit is not None:
        raise ConfigError(f"config file {chosen} does not exist")
    secrets_file = Path(
        os.environ.get(f"{ENV_PREFIX}SECRETS_FILE")
        or values.get("secrets_file")
        or DEFAULT_SECRETS_FILE
    )
    values = merged(values, read_secrets(secrets_file))
    try:
        return Settings(**values)
    except SettingsError as exc:
        # Raised while reading the environment, before validation: a JSON-valued variable
        # whose value is not JSON. Its message names only the top-level field.
        raise ConfigError(_unparsable_environment(exc)) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{_source_of(first['loc'], chosen)}: {first['msg']}{more}") from exc


def _environment() -> dict[str, str]:
    # pydantic-settings matches variable names case-insensitively.
    return {name.upper(): value for name, value in os.environ.items()}


def _env_name(path: Sequence[str | int]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in path).upper()


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _source_of(loc: Sequence[str | int], config: Path) -> str:
    """Where the bad value came from: the variable that set it, or the one that set a section
    holding it and the setting's path; else the config file and the path."""
    environment = _environment()
    for cut in range(len(loc), 0, -1):
        name = _env_name(loc[:cut])
        if name in environment:
            return name if cut == len(loc) else f"{name}: {_dotted(loc)}"
    return f"{config}: {_dotted(loc)}" if loc else str(config)


def _is_structured(path: Sequence[str]) -> bool:
    """Whether the setting at `path` is one pydantic-settings reads from the environment as
    JSON (a section, a table of lists, a mapping), rather than as a plain string."""
    model: type[BaseModel] | None = Settings
    annotation: Any = None
    for part in path:
        if model is None:
            return False
        fields = {name.upper(): info for name, info in model.model_fields.items()}
        info = fields.get(part.upper())
        if info is None:
            return False
        annotation = info.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    return model is not None or get_origin(annotation) in (dict, tuple, list)


def _unparsable_environment(exc: SettingsError) -> str:
    """The one-line message for a variable that should hold JSON and does not."""
    found = re.search(r'field "([^"]+)"', str(exc))
    field = found.group(1) if found else ""
    top = _env_name([field])
    for name, value in sorted(_environment().items()):
        if name != top and not name.startswith(top + "__"):
            continue
        path = name[len(ENV_PREFIX) :].split("__")
        if not _is_structured(path):
            continue
        try:
            json.loads(value)
        except ValueError as error:
            return f"{name}: not valid JSON ({error})"
    return f"environment: {exc}"


MASK = "**********"


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret shown as '**********', the
    password inside database_url included (it is a plain string, so pydantic cannot tell)."""
    dumped = settings.model_dump(mode="json")
    dumped["database_url"] = masked_url(settings.database_url)
    return dumped


def masked_url(url: str) -> str:
    """`url` with the password of its user info, if it has one, replaced by the mask."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not (at and colon):
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
