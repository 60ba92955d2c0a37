"""Lambda entry point for Secrets Manager rotation: ``rotation_handlers.rotate.handler``."""

from __future__ import annotations

from typing import Any

from .protocol import handle


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Secrets Manager invokes this four times per rotation (createSecret ... finishSecret)."""
    return handle(event)
