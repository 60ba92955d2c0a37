"""Rotation strategies; the secret (and an optional pin) chooses one."""

from __future__ import annotations

import importlib
import os

from ..errors import ConfigurationError, InvalidSecretError
from ..secret import DbSecret
from .base import StepContext, Strategy

# name -> (module, class); imported on first use.
STRATEGIES: dict[str, tuple[str, str]] = {
    "single": ("single_user", "SingleUserStrategy"),
    "alternating": ("alternating_user", "AlternatingUserStrategy"),
}


def choose(secret: DbSecret, pinned: str | None = None) -> Strategy:
    """A secret with ``masterarn`` rotates with alternating users, any other with a single user.

    ``ROTATION_STRATEGY`` (``single`` or ``alternating``) pins the deployment to one
    strategy; a secret that does not fit it is refused.
    """
    pinned = pinned if pinned is not None else (os.environ.get("ROTATION_STRATEGY") or None)
    if pinned is not None and pinned not in STRATEGIES:
        raise ConfigurationError(f"ROTATION_STRATEGY must be one of {', '.join(STRATEGIES)}, got {pinned!r}")
    natural = "alternating" if secret.masterarn else "single"
    if pinned is not None and pinned != natural:
        why = "has a 'masterarn'" if secret.masterarn else "has no 'masterarn' (the master secret's ARN)"
        raise InvalidSecretError(
            f"this function is pinned to {pinned}-user rotation (ROTATION_STRATEGY) but the secret {why}"
        )
    module_name, class_name = STRATEGIES[natural]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()


__all__ = ["STRATEGIES", "StepContext", "Strategy", "choose"]
