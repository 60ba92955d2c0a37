"""Alternating-user rotation: the secret switches between ``app`` and ``app_clone``.

Each rotation resets the password of the user that is *not* current, using the master
secret (``masterarn``), so the application never sees a failed login and the previous
credentials keep working until the next rotation.

* createSecret: the master secret must be readable, parse, be for the same engine
  family and belong to another user; the alternate name (``<user>_clone``, and back
  from ``<user>_clone`` to ``<user>``) must fit the engine's real limit (MySQL 32,
  MariaDB 80, PostgreSQL 63 bytes). Only then is the pending version (alternate user,
  new password, every other key unchanged) stored. An RDS-managed master secret
  (``{"username", "password"}`` only) takes engine, host, port and dbname from the rotated
  secret, once the RDS API shows that endpoint belongs to the instance or cluster owning the
  master secret; its TLS is its own (required, with a verified certificate, unless it says
  ``"ssl": false``). A complete master secret keeps its own endpoint, which must be the
  rotated secret's (see ``rds_endpoints``: equal host and port, or the same RDS cluster /
  a read replica of the master's instance per the RDS API), and for PostgreSQL works in
  the rotated secret's database.
* setSecret: the current credentials must log in first (a secret cannot be pointed at
  someone else's account); then the master creates the alternate user if needed, makes
  its privileges equal to the current user's and sets its password (see
  ``engines/postgres_users.py`` and ``engines/mysql_users.py`` for how). An alternate user
  that already exists is taken over only when it is marked as ours, shaped like a clone with
  nothing the current user lacks, or named by an earlier version of this secret on the same
  server (AWSPREVIOUS first; read only when the first two do not hold).
* testSecret: the pending user logs in as itself and can do what the other user can
  (when the secret names a reader of the master's server, a rejected login is retried
  for up to ``REPLICA_LAG_SECONDS``).
* finishSecret: the protocol moves the labels.

Happy path: 3 connections per rotation (current and master in setSecret, pending in
testSecret), no rejected login.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from ..engines import ENGINES
from ..engines.base import ca_bundle
from ..engines.users import alternate_name, lock_timeout, statement_timeout, user_admin_for
from ..errors import ConfigurationError, DatabaseError, InvalidSecretError, LoginRejected, RotationError
from ..rds_endpoints import owns_endpoint, same_deployment, same_endpoint
from ..secret import DbSecret, parse_secret
from .base import StepContext, Strategy, require_same_target

# How long testSecret waits for a new password to reach a read replica / reader endpoint.
REPLICA_LAG_SECONDS = 20.0
REPLICA_RETRY_INTERVAL = 2.0

# Keys an RDS-managed master secret lacks, taken from the rotated secret. Never "ssl": whoever
# writes the rotated secret must not be able to turn off TLS for the master's login.
_CONNECTION_KEYS = ("engine", "host", "port", "dbname")


def _family(engine: str) -> str:
    return ENGINES[engine][0]  # "mysql" or "postgres" (the driver module)


class AlternatingUserStrategy(Strategy):
    name = "alternating"

    # -- createSecret ---------------------------------------------------------------------------
    def validate(self, ctx: StepContext, current: DbSecret) -> None:
        lock_timeout()
        statement_timeout()
        self.alternate(ctx, current)
        self.master(ctx, current)

    def pending_from(self, ctx: StepContext, current: DbSecret, new_password: str) -> DbSecret:
        return current.with_credentials(self.alternate(ctx, current), new_password)

    def alternate(self, ctx: StepContext, current: DbSecret) -> str:
        """The other user's name, checked against the engine's limit."""
        name = alternate_name(current.username)
        admin = user_admin_for(ctx.engine)
        limit = ctx.engine.max_username_length
        if admin.name_length(name) > limit:
            unit = " bytes" if ctx.engine.family == "postgres" else " characters"
            raise InvalidSecretError(
                f"the alternate user name {name!r} is longer than {current.engine} allows "
                f"({admin.name_length(name)} > {limit}{unit}); use a shorter user name"
            )
        return name

    def master(self, ctx: StepContext, current: DbSecret) -> DbSecret:
        """The master secret, completed from the rotated secret when it is RDS-managed, and checked."""
        arn = current.masterarn
        if not arn:
            raise InvalidSecretError(
                "alternating-user rotation needs 'masterarn' (the ARN of a master secret) in the secret"
            )
        try:
            raw = ctx.load_secret_string(arn)
        except RotationError as exc:
            raise InvalidSecretError(f"the master secret {arn} (masterarn) cannot be read: {exc}") from None
        if raw is None:
            raise InvalidSecretError(f"the master secret {arn} (masterarn) has no SecretString")
        try:
            data = json.loads(raw)
        except ValueError:
            raise InvalidSecretError(f"the master secret {arn} (masterarn) is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidSecretError(f"the master secret {arn} (masterarn) must be a JSON object")
        managed = not data.get("host")
        if managed:
            # RDS-managed master secret: only username and password. The server is the rotated
            # secret's, once the RDS API shows it belongs to the master's own instance or cluster;
            # TLS is the master secret's own choice (required unless it says "ssl": false).
            for key in _CONNECTION_KEYS:
                if key in current.data:
                    data[key] = current.data[key]
                else:
                    data.pop(key, None)
        elif _family(current.engine) == "postgres":
            # The master's administrative work happens in the rotated secret's database, where
            # the application's objects are (REASSIGN OWNED and GRANT act on one database).
            if current.dbname:
                data["dbname"] = current.dbname
            else:
                data.pop("dbname", None)
        try:
            master = parse_secret(json.dumps(data), "master")
        except InvalidSecretError as exc:
            raise InvalidSecretError(f"the master secret {arn} (masterarn) is unusable: {exc}") from None
        self._check_master(current, master)
        if managed:
            self._bind_managed_master(current, master, arn)
        else:
            self._bind_master(current, master, arn)
        return master

    def _bind_managed_master(self, current: DbSecret, master: DbSecret, arn: str) -> None:
        """A host-less master secret acts only on an endpoint its RDS owner lists (see rds_endpoints),
        and, unless the master secret itself opts out of TLS, only over a verified certificate: the
        RDS API vouches for a host name, and only certificate verification ties the connection to it."""
        if not owns_endpoint(arn, current.host, current.port):
            raise InvalidSecretError(
                f"the master secret {arn} (masterarn) holds no host (an RDS-managed master secret), so "
                "the master may only act on an endpoint of the RDS instance or cluster that owns it: "
                f"no RDS instance or cluster whose MasterUserSecret is {arn} lists "
                f"{current.host}:{current.port} (its writer, reader, custom or member endpoints, or a "
                "read replica). Name the deployment's endpoint in the secret, or give the master "
                "secret its own host"
            )
        if master.tls and ca_bundle() is None:
            raise ConfigurationError(
                f"the master secret {arn} (masterarn) holds no host (an RDS-managed master secret), so "
                "its password is only sent over TLS with a verified certificate, and DB_CA_BUNDLE is not "
                'set: give the rotation function the RDS CA bundle (caBundle), or put "ssl": false '
                "in the master secret itself"
            )

    def _bind_master(self, current: DbSecret, master: DbSecret, arn: str) -> None:
        """The master may only act on the server the rotated secret names (where the current
        login is proven): the same endpoint, or one of the same RDS cluster / a read replica of
        the master's instance as the RDS API reports it. Anything else is refused."""
        if same_endpoint(master.host, master.port, current.host, current.port):
            return
        if same_deployment(master.host, master.port, current.host, current.port):
            return
        raise InvalidSecretError(
            f"the secret names the server {current.host}:{current.port} but its master secret {arn} "
            f"(masterarn) is for {master.host}:{master.port}: the master may only act on the server "
            "where the current login is proven (the same host and port, or an endpoint of the same "
            "RDS cluster or a read replica of the master's instance, as the RDS API reports)"
        )

    def _check_master(self, current: DbSecret, master: DbSecret) -> DbSecret:
        if _family(master.engine) != _family(current.engine):
            raise InvalidSecretError(
                f"the master secret is for engine {master.engine!r}, the secret for {current.engine!r}"
            )
        if master.username in (current.username, alternate_name(current.username)):
            raise InvalidSecretError(
                f"the master secret's user {master.username!r} is one of the alternating users: "
                "the master must be a separate administrator"
            )
        return master

    # -- setSecret ------------------------------------------------------------------------------
    def set_secret(self, ctx: StepContext, current: DbSecret, pending: DbSecret) -> None:
        require_same_target(current, pending, same_user=False)
        expected = alternate_name(current.username)
        if pending.username != expected:
            raise InvalidSecretError(
                f"the AWSPENDING user {pending.username!r} is not the alternate of the current user "
                f"{current.username!r} (expected {expected!r})"
            )
        master = self.master(ctx, current)
        engine, admin = ctx.engine, user_admin_for(ctx.engine)

        # 1. The current credentials log in: proof that the secret's user is ours to clone.
        try:
            conn = engine.connect(current.credentials)
        except LoginRejected as exc:
            raise LoginRejected(
                f"the current credentials do not log in to {current.host}:{current.port} as "
                f"{current.username}, so {pending.username} is not created or changed: {exc.detail}",
                exc.detail,
            ) from None
        try:
            identity = engine.login_identity(conn)
        finally:
            engine.close(conn)
        if identity != current.username:
            raise DatabaseError(
                f"the current credentials logged in as {identity!r}, not as {current.username!r}"
            )

        # 2. The master makes the alternate user a copy of the current one, with the new password.
        try:
            conn = engine.connect(master.credentials)
        except LoginRejected as exc:
            raise LoginRejected(
                f"the master secret's credentials do not log in to {master.host}:{master.port} as "
                f"{master.username}: {exc.detail}",
                exc.detail,
            ) from None
        try:
            facts = admin.ensure_clone(
                conn,
                current.username,
                pending.username,
                pending.password,
                lambda dbname: engine.connect(replace(master.credentials, dbname=dbname)),
                vouched=lambda: self._named_in_history(ctx, current, pending.username),
            )
        except DatabaseError as exc:
            raise DatabaseError(
                f"the master user {master.username!r} could not prepare {pending.username!r} "
                f"as a copy of {current.username!r}: {exc}",
                exc.detail,
            ) from None
        finally:
            engine.close(conn)
        ctx.facts.update(facts)

    @staticmethod
    def _named_in_history(ctx: StepContext, current: DbSecret, username: str) -> str | None:
        """The label of an earlier version of this secret whose user is ``username`` on the current
        server (the secret's own history shows that login was the application's), or None."""
        for label, version in ctx.history():
            if version.username == username and same_endpoint(
                version.host, version.port, current.host, current.port
            ):
                return label
        return None

    # -- testSecret -----------------------------------------------------------------------------
    def _connect_pending(self, ctx: StepContext, pending: DbSecret) -> object:
        """Log in as the pending user. When the secret names a reader or replica of the master's
        server, the new password may not have replicated yet: a rejected login is retried for up
        to ``REPLICA_LAG_SECONDS`` (only then; the master secret is read only on that path)."""
        try:
            return ctx.engine.connect(pending.credentials)
        except LoginRejected:
            if not self._names_a_replica(ctx, pending):
                raise
        deadline = time.monotonic() + REPLICA_LAG_SECONDS
        while True:
            time.sleep(REPLICA_RETRY_INTERVAL)
            try:
                return ctx.engine.connect(pending.credentials)
            except LoginRejected:
                if time.monotonic() >= deadline:
                    raise

    def _names_a_replica(self, ctx: StepContext, pending: DbSecret) -> bool:
        try:
            master = self.master(ctx, pending)
        except RotationError:
            return False
        return not same_endpoint(master.host, master.port, pending.host, pending.port)

    def test_secret(self, ctx: StepContext, pending: DbSecret) -> None:
        engine, admin = ctx.engine, user_admin_for(ctx.engine)
        other = alternate_name(pending.username)
        conn = self._connect_pending(ctx, pending)
        try:
            engine.limit_waits(conn, lock_timeout(), statement_timeout())
            identity = engine.login_identity(conn)
            if identity != pending.username:
                raise DatabaseError(
                    f"the pending credentials logged in to {pending.host}:{pending.port} as "
                    f"{identity!r}, not as {pending.username!r}"
                )
            facts = admin.verify_pending(conn, pending.username, other)
        finally:
            engine.close(conn)
        ctx.facts["logged_in_as"] = identity
        ctx.facts.update(facts)
