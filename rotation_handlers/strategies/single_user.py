"""Single-user rotation: the user changes its own password."""

from __future__ import annotations

from dataclasses import replace

from ..engines.users import lock_timeout, statement_timeout
from ..errors import DatabaseError, LoginRejected
from ..secret import DbSecret
from .base import StepContext, Strategy, require_same_target


class SingleUserStrategy(Strategy):
    name = "single"

    def validate(self, ctx: StepContext, current: DbSecret) -> None:
        lock_timeout()
        statement_timeout()

    def pending_from(self, ctx: StepContext, current: DbSecret, new_password: str) -> DbSecret:
        return current.with_credentials(current.username, new_password)

    def set_secret(self, ctx: StepContext, current: DbSecret, pending: DbSecret) -> None:
        require_same_target(current, pending, same_user=True)
        engine = ctx.engine
        # Happy path: the current password logs in (one connection, no failed login).
        # After a crash the pending password may already be set; after a rollback the
        # previous one may be what the database has. Only a rejected login moves on.
        candidates = [("current", current.credentials), ("pending", pending.credentials)]
        try:
            label, conn = engine.login_first(candidates)
        except LoginRejected as first_failure:
            previous = ctx.load_previous()
            if previous is None or previous.username != current.username:
                raise first_failure from None
            # AWSPREVIOUS lends only its password: host, port, database and TLS always come from
            # AWSCURRENT, so an older version (another endpoint, "ssl": false) never decides where
            # or how the new password travels.
            candidates.append(("previous", replace(current.credentials, password=previous.password)))
            try:
                label, conn = engine.login_first([candidates[-1]])
            except LoginRejected as exc:
                detail = "; ".join(dict.fromkeys([first_failure.detail, exc.detail]))
                raise LoginRejected(
                    f"cannot log in to {current.host}:{current.port} as {current.username} with the "
                    f"current, pending or previous password: {detail}",
                    detail,
                ) from None
        try:
            engine.limit_waits(conn, lock_timeout(), statement_timeout())
            # A login the server maps to another account (a MariaDB proxy or anonymous account, a
            # PostgreSQL db_user_namespace name) would change that account's password, not this one's.
            identity = engine.login_identity(conn)
            if identity != current.username:
                raise DatabaseError(
                    f"the {label} credentials logged in to {current.host}:{current.port} as {identity!r}, "
                    f"not as {current.username!r}: no password is changed"
                )
            ctx.facts["logged_in_with"] = label
            if label == "pending":
                # Set where this login matched; other host entries may not be (a retry from
                # another address after an attempt that stopped half-way).
                ctx.facts.update(engine.complete_own_password(conn, pending.credentials) or {})
                ctx.facts["outcome"] = "already set"
                return
            facts = engine.set_own_password(
                conn, current.credentials if label == "current" else candidates[-1][1], pending.password
            )
            ctx.facts.update(facts or {})
            ctx.facts["outcome"] = "password changed"
        finally:
            engine.close(conn)
