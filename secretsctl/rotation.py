"""``secretsctl rotate | status | unstick | rollback``: the rotation lifecycle."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    pass
