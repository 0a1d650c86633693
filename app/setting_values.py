"""Reading one environment variable into a checked value.

Each reader raises `ConfigError` with a message that names the variable, which the entry points
print as the one line a bad setting stops a process with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable."""


def get(environ: Mapping[str, str], name: str) -> str | None:
    """An unset and an empty variable mean the same: take the default."""
    value = environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def get_or_file(environ: Mapping[str, str], name: str) -> str | None:
    """`NAME`, or else the contents of the file that `NAME_FILE` names (keys are often mounted
    as files). Setting both is ambiguous and refused."""
    value = get(environ, name)
    path = get(environ, f"{name}_FILE")
    if path is None:
        return value
    if value is not None:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    try:
        with open(path, encoding="utf-8") as handle:
            contents = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{name}_FILE cannot be read: {path!r} ({type(error).__name__})") from None
    return contents or None


def required(environ: Mapping[str, str], name: str, why: str) -> str:
    value = get_or_file(environ, name)
    if value is None:
        raise ConfigError(f"{name} is required {why}")
    return value


def nice(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = get(environ, name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,2}", raw) or int(raw) > 19:
        raise ConfigError(f"{name} must be a nice value from 0 to 19, got {raw!r}")
    return int(raw)


def positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = get(environ, name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = get(environ, name) or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def choices(environ: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of distinct names out of `allowed`, in the order given."""
    raw = get(environ, name) or default
    names = tuple(part.strip() for part in raw.split(","))
    for part in names:
        if part not in allowed:
            raise ConfigError(f"{name} must list names out of {', '.join(allowed)}, got {raw!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{name} names a provider twice: {raw!r}")
    return names


def url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL: {value!r}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL with a host, got {value!r}")
    return value
