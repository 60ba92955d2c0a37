"""Strong passwords from the OS CSPRNG, with AWS's environment variable names.

``PASSWORD_LENGTH`` (default 32), ``EXCLUDE_CHARACTERS`` (default: the engine's
list of characters that break connection strings, shells and ``.pgpass``),
``EXCLUDE_NUMBERS``, ``EXCLUDE_PUNCTUATION``, ``EXCLUDE_UPPERCASE``,
``EXCLUDE_LOWERCASE`` (default false) and ``REQUIRE_EACH_INCLUDED_TYPE``
(default true).
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigurationError

DEFAULT_LENGTH = 32
MAX_LENGTH = 4096

# Characters that break connection strings, URLs, shells or DSN key=value syntax.
_UNSAFE = "/@\"'\\`$;&|<>(){}[]!?*#%=,~+ "
#: Default EXCLUDE_CHARACTERS per engine family; PostgreSQL also leaves out ``:`` (``.pgpass``).
DEFAULT_EXCLUDE_CHARACTERS = {"mysql": _UNSAFE, "postgres": _UNSAFE + ":"}


def default_exclude_characters(engine: str) -> str:
    """The characters generated passwords leave out by default for a secret's ``engine``."""
    from .engines import ENGINES  # the engine table; importing it loads no driver

    return DEFAULT_EXCLUDE_CHARACTERS[ENGINES[engine][0]]


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class PasswordPolicy:
    length: int
    classes: tuple[str, ...]
    require_each: bool

    @classmethod
    def from_env(cls, default_exclude: str, env: Mapping[str, str] | None = None) -> PasswordPolicy:
        env = os.environ if env is None else env
        raw_length = env.get("PASSWORD_LENGTH") or str(DEFAULT_LENGTH)
        try:
            length = int(raw_length)
        except ValueError:
            raise ConfigurationError(f"PASSWORD_LENGTH must be a whole number, got {raw_length!r}") from None
        exclude = env.get("EXCLUDE_CHARACTERS")
        exclude = default_exclude if exclude is None else exclude
        pools = {
            "EXCLUDE_LOWERCASE": string.ascii_lowercase,
            "EXCLUDE_UPPERCASE": string.ascii_uppercase,
            "EXCLUDE_NUMBERS": string.digits,
            "EXCLUDE_PUNCTUATION": string.punctuation,
        }
        classes = tuple(
            "".join(ch for ch in pool if ch not in exclude)
            for name, pool in pools.items()
            if not _flag(env, name, False)
        )
        classes = tuple(c for c in classes if c)
        require_each = _flag(env, "REQUIRE_EACH_INCLUDED_TYPE", True)
        if not classes:
            raise ConfigurationError("the password policy excludes every character (EXCLUDE_* settings)")
        minimum = max(8, len(classes) if require_each else 1)
        if not minimum <= length <= MAX_LENGTH:
            raise ConfigurationError(
                f"PASSWORD_LENGTH must be between {minimum} and {MAX_LENGTH}, got {length}"
            )
        return cls(length=length, classes=classes, require_each=require_each)

    def generate(self) -> str:
        alphabet = "".join(self.classes)
        while True:  # rejection sampling keeps every accepted password equally likely
            password = "".join(secrets.choice(alphabet) for _ in range(self.length))
            if not self.require_each or all(any(ch in pool for ch in password) for pool in self.classes):
                return password
