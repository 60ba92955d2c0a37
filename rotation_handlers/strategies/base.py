"""The strategy interface: how the pending secret is built, set and tested.

The protocol (``rotation_handlers.protocol``) owns the Secrets Manager side: the
gate, reading versions, putting the pending value and moving labels. A strategy
owns the database side and never calls Secrets Manager except through the
context's loaders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..engines import Engine
from ..errors import DatabaseError, InvalidSecretError
from ..secret import DbSecret


@dataclass
class StepContext:
    """What a strategy may use during one step."""

    secret_arn: str
    token: str
    engine: Engine
    #: Loads and parses the AWSPREVIOUS version (an API call): only off the happy path.
    load_previous: Callable[[], DbSecret | None]
    #: Reads another secret's AWSCURRENT SecretString by ARN, unparsed (the master secret; an
    #: RDS-managed one holds only ``username`` and ``password``, so the strategy completes it).
    load_secret_string: Callable[[str], str | None]
    facts: dict[str, Any] = field(default_factory=dict)
    #: This secret's earlier versions, parsed, AWSPREVIOUS first, then other labelled ones (not
    #: AWSCURRENT or AWSPENDING): each is read (an API call) only when the iteration reaches it.
    history: Callable[[], Iterator[tuple[str, DbSecret]]] = field(default=lambda: iter(()))


class Strategy(ABC):
    name: ClassVar[str]

    def validate(self, ctx: StepContext, current: DbSecret) -> None:  # noqa: B027 - optional hook
        """createSecret: report every problem a later step would hit, before anything is written."""

    @abstractmethod
    def pending_from(self, ctx: StepContext, current: DbSecret, new_password: str) -> DbSecret:
        """createSecret: the pending secret built from the current one."""

    @abstractmethod
    def set_secret(self, ctx: StepContext, current: DbSecret, pending: DbSecret) -> None:
        """setSecret: make the pending credentials valid in the database (idempotently)."""

    def test_secret(self, ctx: StepContext, pending: DbSecret) -> None:
        """testSecret: the pending credentials log in and run a statement as the expected user."""
        engine = ctx.engine
        conn = engine.connect(pending.credentials)
        try:
            user = engine.login_identity(conn)
            if user != pending.username:
                raise DatabaseError(
                    f"the pending credentials logged in to {pending.host}:{pending.port} as {user!r}, "
                    f"not as {pending.username!r}"
                )
            ctx.facts.update(engine.check_own_entries(conn) or {})
        finally:
            engine.close(conn)
        ctx.facts["logged_in_as"] = user


def require_same_target(current: DbSecret, pending: DbSecret, same_user: bool) -> None:
    """Pending and current must point at the same server (and, for single-user, the same user)."""
    problems = []
    if pending.host != current.host or pending.port != current.port:
        problems.append(
            f"host {pending.host}:{pending.port} differs from the current {current.host}:{current.port}"
        )
    if pending.engine != current.engine:
        problems.append(f"engine {pending.engine!r} differs from the current {current.engine!r}")
    if same_user and pending.username != current.username:
        problems.append(f"user {pending.username!r} differs from the current {current.username!r}")
    if problems:
        raise InvalidSecretError("the AWSPENDING secret does not match AWSCURRENT: " + "; ".join(problems))
