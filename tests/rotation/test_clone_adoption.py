"""Which existing ``<user>_clone`` (or base user) the master may take over, on the real servers.

An existing alternate login is used only when one of these holds, and anything else is refused
in setSecret with every problem named and nothing changed:

* this secret's own history names it (AWSPREVIOUS, or another labelled version, holds that
  username for the same server);
* it carries this function's marker (PostgreSQL: the role comment);
* it has the shape AWS's vended alternating functions leave (aws-samples/aws-secrets-manager-
  rotation-lambdas, ``SecretsManagerRDS{MySQL,PostgreSQL}RotationMultiUser``: MySQL ``CREATE USER``
  plus the current user's ``SHOW GRANTS`` lines replayed; PostgreSQL ``CREATE ROLE ... WITH LOGIN``
  then ``GRANT <user> TO <user>_clone``) with no privilege, membership or host entry the current
  login lacks.

And at each switch the login that becomes current gets exactly the current login's host entries
and privileges.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from rotation_handlers import secrets_manager

from .conftest import Db, Harness, maria_db, new_password, pg_db, unique_user
from .test_alternating import make_app, privileges, run_as, super_sql
from .test_alternating_integrity import fails_in_set_secret, role_state


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> Db:
    return pg_db(request.getfixturevalue("pg_default"))


@pytest.fixture
def maria(request: pytest.FixtureRequest) -> Db:
    return maria_db(request.getfixturevalue("maria_server"))


def with_history(harness: Harness, arn: str, earlier: dict[str, Any]) -> None:
    """Give the secret the history a rotation leaves: ``earlier`` becomes AWSPREVIOUS.

    PutSecretValue moves AWSCURRENT to the new version and AWSPREVIOUS to the one that had it
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html)."""
    current = harness.value(arn)
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(earlier))
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(current))
    harness.remember(earlier)
    assert harness.value(arn, "AWSPREVIOUS")["username"] == earlier["username"]


# -- MySQL / MariaDB --------------------------------------------------------------------------------
def maria_accounts(db: Db, user: str) -> dict[str, Any]:
    """Every host entry of ``user`` with its grants (hash removed) and its password hash."""
    rows = super_sql(
        db, "SELECT Host, authentication_string FROM mysql.user WHERE User = %s ORDER BY Host", params=(user,)
    )
    found: dict[str, Any] = {}
    for host, hash_ in rows:
        grants = super_sql(db, "SHOW GRANTS FOR %s@%s", params=(user, host))
        found[host] = (hash_, sorted(str(g[0]).split(" IDENTIFIED BY")[0] for g in grants))
    return found


def test_mysql_unrelated_clone_with_all_privileges_is_refused(harness: Harness, maria: Db) -> None:
    arn, user, _ = make_app(harness, maria)
    clone = user + "_clone"
    super_sql(maria, "CREATE USER %s@'%%' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, "GRANT ALL PRIVILEGES ON *.* TO %s@'%%'", params=(clone,))
    before = maria_accounts(maria, clone)
    error = fails_in_set_secret(harness, arn)
    assert f"the account '{clone}' exists and is not an alternate login of '{user}'" in error, error
    assert f"'{clone}'@'%' holds privileges '{user}'@'%' lacks (ALL PRIVILEGES on *.*)" in error, error
    assert maria_accounts(maria, clone) == before  # nothing changed: grants, hosts, password


def test_mysql_clone_with_a_host_entry_the_user_lacks_is_refused(harness: Harness, maria: Db) -> None:
    """AWS's shape on '%' (the user's grants replayed), plus an entry of its own with its own grants."""
    arn, user, place = make_app(harness, maria)
    clone = user + "_clone"
    super_sql(maria, "CREATE USER %s@'%%' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, f"GRANT SELECT, INSERT, UPDATE ON `{place}`.* TO %s@'%%'", params=(clone,))
    super_sql(maria, "CREATE USER %s@'localhost' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, "GRANT SELECT ON mysql.* TO %s@'localhost'", params=(clone,))
    before = maria_accounts(maria, clone)
    error = fails_in_set_secret(harness, arn)
    assert f"'{clone}'@'localhost' is a host entry '{user}' lacks" in error, error
    assert "holds privileges" not in error  # the '%' entry is AWS's shape
    assert maria_accounts(maria, clone) == before


def test_mysql_aws_shaped_clone_with_fewer_privileges_is_adopted(harness: Harness, maria: Db) -> None:
    arn, user, place = make_app(harness, maria)
    clone = user + "_clone"
    super_sql(maria, "CREATE USER %s@'%%' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, f"GRANT SELECT ON `{place}`.* TO %s@'%%'", params=(clone,))
    harness.rotate(arn)
    assert harness.value(arn)["username"] == clone
    assert privileges(maria, clone) == privileges(maria, user)


def test_mysql_clone_named_in_the_secrets_history_is_made_exactly_equal(harness: Harness, maria: Db) -> None:
    """AWSPREVIOUS names the clone: it is the application's other login, so it is taken over, and
    what it has beyond the current login (a host entry, ALL PRIVILEGES, a TLS subject) goes."""
    arn, user, place = make_app(harness, maria)
    clone = user + "_clone"
    super_sql(maria, "CREATE USER %s@'%%' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, "GRANT ALL PRIVILEGES ON *.* TO %s@'%%'", params=(clone,))
    super_sql(maria, "ALTER USER %s@'%%' REQUIRE SUBJECT '/CN=nobody'", params=(clone,))
    super_sql(maria, "CREATE USER %s@'localhost' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, "GRANT SELECT ON mysql.* TO %s@'localhost'", params=(clone,))
    with_history(harness, arn, dict(harness.value(arn), username=clone, password=new_password()))
    harness.counter.calls.clear()
    secrets_manager.VERSION_CACHE.clear()
    harness.rotate(arn)
    # The shape check fails, so AWSPREVIOUS is read once (the only extra call).
    assert harness.counter.total == 12, dict(harness.counter.calls)
    assert harness.value(arn)["username"] == clone
    for _ in range(3):
        assert sorted(maria_accounts(maria, clone)) == sorted(maria_accounts(maria, user)) == ["%"]
        assert privileges(maria, clone) == privileges(maria, user)
        current = harness.value(arn)
        run_as(maria, current, f"INSERT INTO `{place}`.t VALUES (1)")
        harness.counter.calls.clear()
        secrets_manager.VERSION_CACHE.clear()
        harness.rotate(arn)
        assert harness.counter.total == 11, dict(harness.counter.calls)  # equal now: no history read


def unrelated_clone(maria: Db, user: str) -> str:
    clone = user + "_clone"
    super_sql(maria, "CREATE USER %s@'%%' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, "GRANT ALL PRIVILEGES ON *.* TO %s@'%%'", params=(clone,))
    return clone


def test_a_version_with_another_staging_label_naming_the_clone_vouches(harness: Harness, maria: Db) -> None:
    arn, user, _ = make_app(harness, maria)
    clone = unrelated_clone(maria, user)
    earlier = dict(harness.value(arn), username=clone, password=new_password())
    harness.remember(earlier)
    harness.sm.put_secret_value(
        SecretId=arn, SecretString=json.dumps(earlier), VersionStages=["BEFORE-MIGRATION"]
    )
    harness.rotate(arn)
    assert harness.value(arn)["username"] == clone
    assert privileges(maria, clone) == privileges(maria, user)


def test_history_naming_the_clone_on_another_server_does_not_vouch(harness: Harness, maria: Db) -> None:
    arn, user, _ = make_app(harness, maria)
    clone = unrelated_clone(maria, user)
    with_history(harness, arn, dict(harness.value(arn), username=clone, host="db.other.example"))
    before = maria_accounts(maria, clone)
    error = fails_in_set_secret(harness, arn)
    assert "no earlier version of this secret names it" in error, error
    assert maria_accounts(maria, clone) == before


def test_mysql_current_entries_are_copied_and_extra_entries_dropped_at_each_switch(
    harness: Harness, maria: Db
) -> None:
    """A host entry added to the current login reaches the other one; one dropped from it goes."""
    arn, user, place = make_app(harness, maria)
    clone = user + "_clone"
    harness.rotate(arn)  # current: the clone, equal to the user
    super_sql(maria, "CREATE USER %s@'10.1.%%' IDENTIFIED BY %s", params=(clone, new_password()))
    super_sql(maria, f"GRANT SELECT ON `{place}`.* TO %s@'10.1.%%'", params=(clone,))
    harness.rotate(arn)  # current: the user, who gets the new entry
    assert sorted(maria_accounts(maria, user)) == ["%", "10.1.%"]
    assert privileges(maria, user) == privileges(maria, clone)
    super_sql(maria, "DROP USER %s@'10.1.%%'", params=(user,))  # the DBA retires the entry
    harness.rotate(arn)  # current: the clone, which loses it
    assert sorted(maria_accounts(maria, clone)) == ["%"]
    assert privileges(maria, user) == privileges(maria, clone)


# -- PostgreSQL -------------------------------------------------------------------------------------
def table_owners(pg: Db, schema: str) -> dict[str, str]:
    rows = super_sql(
        pg,
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class"
        " WHERE relnamespace = %s::regnamespace AND relkind = 'r'",
        params=(f'"{schema}"',),
    )
    return dict(rows)


def pg_app(harness: Harness, pg: Db) -> tuple[str, str, str]:
    """``make_app`` without the grant on schema ``public`` (its owner, ``pg_database_owner``, is a
    handover case of its own): (arn, user, schema the user owns)."""
    arn, user, schema = make_app(harness, pg)
    super_sql(pg, f'REVOKE ALL ON SCHEMA public FROM "{user}"')
    return arn, user, schema


def someone_elses_login(pg: Db, user: str, schema: str) -> tuple[str, str]:
    """``<user>_clone``: another person's LOGIN role owning a table, which ``user`` is a member of."""
    clone, password = user + "_clone", new_password()
    super_sql(
        pg,
        f"CREATE ROLE \"{clone}\" LOGIN PASSWORD '{password}'",
        f'CREATE TABLE "{schema}".theirs (id int)',
        f'ALTER TABLE "{schema}".theirs OWNER TO "{clone}"',
        f'GRANT "{clone}" TO "{user}"',
    )
    return clone, password


def test_postgres_login_role_the_application_is_a_member_of_is_refused(harness: Harness, pg: Db) -> None:
    arn, user, schema = pg_app(harness, pg)
    clone, clone_password = someone_elses_login(pg, user, schema)
    harness.passwords.add(clone_password)
    before, owners = role_state(pg, clone), table_owners(pg, schema)
    error = fails_in_set_secret(harness, arn)
    assert f"the role '{clone}' exists and is not an alternate login of '{user}'" in error, error
    assert f"'{user}' is a member of it" in error, error
    assert role_state(pg, clone) == before  # comment, memberships untouched
    assert table_owners(pg, schema) == owners == {"owned": user, "theirs": clone}
    assert pg.login(clone, clone_password)  # its owner is not locked out


def test_postgres_aws_shaped_clone_holding_its_own_grants_is_refused(harness: Harness, pg: Db) -> None:
    """LOGIN and a member of the user, as AWS's function leaves it, but someone granted it a table
    the application may not read: taking it over would give that table to the application."""
    arn, user, _ = pg_app(harness, pg)
    clone, clone_password, team = user + "_clone", new_password(), unique_user("team")
    harness.passwords.add(clone_password)
    secret_table = f"payroll_{secrets.token_hex(3)}"
    super_sql(
        pg,
        f"CREATE ROLE \"{clone}\" LOGIN PASSWORD '{clone_password}'",
        f'GRANT "{user}" TO "{clone}"',
        f'CREATE ROLE "{team}"',
        f'CREATE TABLE public."{secret_table}" (id int)',
        f'ALTER TABLE public."{secret_table}" OWNER TO "{team}"',
        f'GRANT SELECT ON public."{secret_table}" TO "{clone}"',
    )
    before = role_state(pg, clone)
    error = fails_in_set_secret(harness, arn)
    assert f"it holds privileges '{user}' lacks (SELECT on table public.{secret_table})" in error, error
    assert role_state(pg, clone) == before
    assert pg.login(clone, clone_password)
    readable = super_sql(
        pg, "SELECT has_table_privilege(%s, %s, 'SELECT')", params=(user, f'public."{secret_table}"')
    )
    assert readable == [(False,)]


def test_postgres_clone_named_in_the_secrets_history_is_taken_over(harness: Harness, pg: Db) -> None:
    """The same role, named by AWSPREVIOUS: it was the application's login, so its grants and the
    table it owns go to the application's primary login, and both logins use them."""
    arn, user, schema = pg_app(harness, pg)
    clone, clone_password = someone_elses_login(pg, user, schema)
    with_history(harness, arn, dict(harness.value(arn), username=clone, password=clone_password))
    harness.rotate(arn)
    assert harness.value(arn)["username"] == clone
    for _ in range(2):
        for stage in ("AWSCURRENT", "AWSPREVIOUS"):
            run_as(pg, harness.value(arn, stage), f'INSERT INTO "{schema}".theirs VALUES (1)')
        harness.rotate(arn)


def test_postgres_aws_clone_in_a_fresh_secret_is_adopted_only_while_it_holds_nothing_extra(
    harness: Harness, pg: Db
) -> None:
    arn, user, schema = pg_app(harness, pg)
    clone, clone_password = user + "_clone", new_password()
    harness.passwords.add(clone_password)
    super_sql(
        pg, f"CREATE ROLE \"{clone}\" LOGIN PASSWORD '{clone_password}'", f'GRANT "{user}" TO "{clone}"'
    )
    clone_value = dict(harness.value(arn), username=clone, password=clone_password)
    run_as(pg, clone_value, f'CREATE TABLE "{schema}".by_clone (id int)')  # owned by the clone
    error = fails_in_set_secret(harness, arn)
    assert "it owns 1 object(s) in database 'postgres'" in error, error
    super_sql(pg, f'ALTER TABLE "{schema}".by_clone OWNER TO "{user}"')  # the DBA hands it over
    harness.rotate(arn)
    assert harness.value(arn)["username"] == clone


def test_mysql_crash_anywhere_while_taking_over_a_clone_then_retry(harness: Harness, maria: Db) -> None:
    """History-proven clone with extras and a host entry of its own: a crash before or after any
    master statement, then Secrets Manager's retry, ends with the clone exactly equal to the user."""
    from .test_crash_recovery import crash_then_retry, record_points

    def state() -> tuple[str, str, str]:
        arn, user, _ = make_app(harness, maria)
        clone = unrelated_clone(maria, user)
        super_sql(maria, "CREATE USER %s@'localhost' IDENTIFIED BY %s", params=(clone, new_password()))
        with_history(harness, arn, dict(harness.value(arn), username=clone, password=new_password()))
        return arn, user, clone

    points = record_points(harness, state()[0])
    chosen = [
        i
        for i, p in enumerate(points)
        if p.split(" ", 1)[-1] in {"revoke", "drop extra host entry", "alter user password"}
    ]
    assert len(chosen) >= 4, points
    for at in chosen:
        arn, user, clone = state()
        crash_then_retry(harness, arn, at, cold_retry=True, at_crash=lambda: None)
        assert harness.value(arn)["username"] == clone
        assert sorted(maria_accounts(maria, clone)) == sorted(maria_accounts(maria, user)) == ["%"]
        assert privileges(maria, clone) == privileges(maria, user)
