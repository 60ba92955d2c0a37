"""Alternating users: privileges, hosts and ownership, engine by engine (real servers)."""

from __future__ import annotations

import json
import secrets

import pytest

from .conftest import (
    Db,
    Harness,
    by_master,
    create_maria_user,
    create_pg_user,
    maria_db,
    new_password,
    unique_user,
)
from .test_alternating import (
    assert_same_privileges,
    make_app,
    master_secret,
    privileges,
    run_as,
    super_sql,
)


@pytest.fixture
def maria(request: pytest.FixtureRequest) -> Db:
    return maria_db(request.getfixturevalue("maria_server"))


# -- MySQL/MariaDB --------------------------------------------------------------------------------
def maria_hosts(db: Db, user: str) -> list[str]:
    return sorted(r[0] for r in super_sql(db, "SELECT Host FROM mysql.user WHERE User = %s", params=(user,)))


def maria_hashes(db: Db, user: str) -> set[str]:
    rows = super_sql(db, "SELECT authentication_string FROM mysql.user WHERE User = %s", params=(user,))
    return {r[0] for r in rows}


def test_mysql_hosts_grant_option_tls_roles_and_awkward_names(harness: Harness, maria: Db) -> None:
    """Specific hosts (not '%'), WITH GRANT OPTION, column/routine/role grants, REQUIRE, limits."""
    tag = secrets.token_hex(3)
    user = f"O'd D%x {tag}"  # a quote, a space, a '%', upper case
    clone = user + "_clone"
    schema, role = f"app db {tag}", f"r_{tag}"
    password = new_password()
    statements = [
        f"CREATE DATABASE `{schema}`",
        f"CREATE TABLE `{schema}`.t (a int, `b c` int)",
        f"CREATE PROCEDURE `{schema}`.p() SELECT 1",
        f"CREATE ROLE `{role}`",
        f"GRANT SELECT ON `{schema}`.* TO `{role}`",
        # the master needs ADMIN OPTION on a role to grant it (as the role's creator would have)
        f"GRANT `{role}` TO 'admin'@'127.0.0.1' WITH ADMIN OPTION",
    ]
    super_sql(maria, *statements)
    create_maria_user(maria.server, user, password, host="127.0.0.1", require_ssl=True)
    create_maria_user(maria.server, user, new_password(), host="10.0.%")
    local, net = (user, "127.0.0.1"), (user, "10.0.%")
    for statement, account in [
        (f"GRANT SELECT, INSERT ON `{schema}`.* TO %s@%s WITH GRANT OPTION", local),
        (f"GRANT SELECT (a, `b c`), UPDATE (a) ON `{schema}`.t TO %s@%s", local),
        (f"GRANT EXECUTE ON PROCEDURE `{schema}`.p TO %s@%s", local),
        (f"GRANT ALL PRIVILEGES ON `{schema[:3]}\\_%%`.* TO %s@%s", local),
        ("GRANT PROCESS ON *.* TO %s@%s", local),
        (f"GRANT `{role}` TO %s@%s WITH ADMIN OPTION", local),
        (f"SET DEFAULT ROLE `{role}` FOR %s@%s", local),
        ("ALTER USER %s@%s WITH MAX_QUERIES_PER_HOUR 1000 MAX_USER_CONNECTIONS 20", local),
        (f"GRANT SELECT ON `{schema}`.t TO %s@%s", net),
        ("ALTER USER %s@%s REQUIRE X509", net),
    ]:
        super_sql(maria, statement, params=account)
    # The application's earlier login (this secret's AWSPREVIOUS names it), with other privileges and
    # a host entry of its own: extras must go (ALL PRIVILEGES, grant option, TLS, the entry...).
    create_maria_user(maria.server, clone, new_password(), host="127.0.0.1")
    for statement in [
        f"GRANT ALL PRIVILEGES ON `{schema}`.* TO %s@%s WITH GRANT OPTION",
        "GRANT RELOAD ON *.* TO %s@%s",
        "ALTER USER %s@%s REQUIRE SUBJECT '/CN=nobody'",
    ]:
        super_sql(maria, statement, params=(clone, "127.0.0.1"))
    create_maria_user(maria.server, clone, new_password(), host="localhost")  # only the clone has it

    master = master_secret(harness, maria)
    arn = harness.create_secret(maria.secret(clone, new_password(), masterarn=master))
    harness.sm.put_secret_value(
        SecretId=arn, SecretString=json.dumps(maria.secret(user, password, masterarn=master))
    )
    for n in range(3):
        harness.rotate(arn)
        current, previous = harness.value(arn), harness.value(arn, "AWSPREVIOUS")
        assert current["username"] == (clone if n % 2 == 0 else user)
        assert maria.login(current["username"], current["password"])
        assert maria.login(previous["username"], previous["password"])
        # Exactly the current login's host entries: the one only the clone had is gone.
        assert maria_hosts(maria, clone) == maria_hosts(maria, user) == ["10.0.%", "127.0.0.1"]
        mine, theirs = privileges(maria, user), privileges(maria, clone)
        assert theirs == mine
        local_grants = mine["127.0.0.1"]
        assert local_grants.require == "SSL"
        assert mine["10.0.%"].require == "X509"
        assert local_grants.limits == {"MAX_QUERIES_PER_HOUR": "1000", "MAX_USER_CONNECTIONS": "20"}
        assert local_grants.objects[f"`{schema}`.*"][1] is True  # WITH GRANT OPTION
        assert local_grants.roles == {f"`{role}`": True}
        assert local_grants.default_role == f"`{role}`"
        # The password hash is never copied: each user has its own.
        assert not maria_hashes(maria, user) & maria_hashes(maria, clone)
    # The clone can use what it was given, as itself.
    rows = run_as(maria, harness.value(arn, "AWSPREVIOUS"), f"SELECT a, `b c` FROM `{schema}`.t")
    assert rows == []


def test_mysql_grant_added_between_rotations_is_carried_over(harness: Harness, maria: Db) -> None:
    arn, user, place = make_app(harness, maria)
    clone = user + "_clone"
    harness.rotate(arn)  # current: the clone
    super_sql(maria, f"GRANT DELETE ON `{place}`.* TO %s@%s", params=(clone, "%"))  # to the current user
    super_sql(maria, f"GRANT DROP ON `{place}`.* TO %s@%s", params=(user, "%"))  # to the idle user
    harness.rotate(arn)  # pending: the base user, made equal to the clone
    assert harness.value(arn)["username"] == user
    assert_same_privileges(maria, user)
    privs = privileges(maria, user)["%"].objects[f"`{place}`.*"][0]
    assert ("DELETE", None) in privs and ("DROP", None) not in privs
    harness.rotate(arn)
    assert_same_privileges(maria, user)


# -- PostgreSQL -------------------------------------------------------------------------------------
def owners(db: Db, schema: str) -> set[str]:
    rows = super_sql(
        db,
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = %s::regnamespace"
        " AND relkind = 'r'",
        params=(f'"{schema}"',),
    )
    return {r[0] for r in rows}


def test_postgres_objects_made_by_either_login_are_usable_by_both(harness: Harness, pg: Db) -> None:
    """aws-samples issues 38, 56, 175: tables created as app_clone unreadable by app later."""
    arn, user, schema = make_app(harness, pg)
    s = f'"{schema}"'
    for n in range(5):
        harness.rotate(arn)
        current, previous = harness.value(arn), harness.value(arn, "AWSPREVIOUS")
        assert current["username"] == (user + "_clone" if n % 2 == 0 else user)
        # The current login creates; the previous one reads, writes, alters, indexes.
        run_as(pg, current, f"CREATE TABLE {s}.c{n} (id int)", f"INSERT INTO {s}.c{n} VALUES (1)")
        run_as(
            pg,
            previous,
            f"SELECT * FROM {s}.c{n}",
            f"INSERT INTO {s}.c{n} VALUES (2)",
            f"UPDATE {s}.c{n} SET id = id + 10",
            f"ALTER TABLE {s}.c{n} ADD COLUMN note text",
            f"CREATE INDEX ON {s}.c{n} (id)",
        )
        # A pooler's DISCARD ALL (or RESET ROLE) keeps the owning role.
        run_as(pg, current, "DISCARD ALL", f"CREATE TABLE {s}.d{n} (id int)")
        run_as(pg, previous, f"DROP TABLE {s}.d{n}")
        # The previous login creates; the current one drops it.
        run_as(pg, previous, f"CREATE TABLE {s}.p{n} (id int)", f"CREATE SEQUENCE {s}.q{n}")
        run_as(
            pg, current, f"INSERT INTO {s}.p{n} VALUES (1)", f"DROP TABLE {s}.p{n}", f"DROP SEQUENCE {s}.q{n}"
        )
        # Every table made so far, by either login, is usable by the current one.
        for m in range(n + 1):
            assert run_as(pg, current, f"SELECT count(*) FROM {s}.c{m}")[0][0] == 2
        assert owners(pg, schema) == {user}
        assert_same_privileges(pg, user)
    # Tables made by either login can be dropped by the other, whichever is current.
    for m in range(5):
        who = harness.value(arn) if m % 2 else harness.value(arn, "AWSPREVIOUS")
        run_as(pg, who, f"DROP TABLE {s}.c{m}")


def test_postgres_privileges_granted_later_reach_the_clone(harness: Harness, pg: Db) -> None:
    arn, user, schema = make_app(harness, pg)
    clone = user + "_clone"
    harness.rotate(arn)  # current: the clone
    current = harness.value(arn)
    super_sql(pg, f'CREATE TABLE "{schema}".late (id int)', f'GRANT SELECT ON "{schema}".late TO "{user}"')
    assert run_as(pg, current, f'SELECT count(*) FROM "{schema}".late')[0][0] == 0  # at once, no rotation
    # A role granted to the clone directly ends up granted to the original too.
    reader = unique_user("reader")
    super_sql(pg, by_master(pg.server, f'CREATE ROLE "{reader}"'), f'GRANT "{reader}" TO "{clone}"')
    harness.rotate(arn)
    assert harness.value(arn)["username"] == user
    assert reader in privileges(pg, user)["roles"]
    assert_same_privileges(pg, user)
    # Role attributes follow the original.
    super_sql(pg, f'ALTER ROLE "{user}" CREATEDB CONNECTION LIMIT 7')
    harness.rotate(arn)
    attrs = super_sql(
        pg, "SELECT rolcreatedb, rolconnlimit FROM pg_roles WHERE rolname = %s", params=(clone,)
    )
    assert attrs == [(True, 7)]
    assert_same_privileges(pg, user)


def test_postgres_takes_over_a_clone_made_by_aws_functions(harness: Harness, pg: Db) -> None:
    """AWS's clone only inherits the original: tables it created are owned by it. Ours hands them over."""
    arn, user, schema = make_app(harness, pg)
    clone, clone_password = user + "_clone", new_password()
    create_pg_user(pg.server, clone, clone_password)
    super_sql(pg, f'GRANT "{user}" TO "{clone}"')
    clone_value = dict(harness.value(arn), username=clone, password=clone_password)
    run_as(pg, clone_value, f'CREATE TABLE "{schema}".by_clone (id int)')
    assert owners(pg, schema) == {user, clone}
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(clone_value))
    harness.rotate(arn)  # clone -> original
    current = harness.value(arn)
    assert current["username"] == user
    assert owners(pg, schema) == {user}
    run_as(
        pg,
        current,
        f'INSERT INTO "{schema}".by_clone VALUES (1)',
        f'ALTER TABLE "{schema}".by_clone ADD c int',
    )
    harness.rotate(arn)
    run_as(pg, harness.value(arn), f'CREATE TABLE "{schema}".after (id int)')
    assert owners(pg, schema) == {user}
    assert_same_privileges(pg, user)


def test_postgres_grant_the_master_cannot_pass_on_fails_set_secret_clearly(harness: Harness, pg: Db) -> None:
    """A privilege on a superuser's table given only to the clone cannot be moved by a CREATEROLE
    master: setSecret says so (nothing switches); once the owner grants it, the retry completes."""
    from devtools.aws import StepFailed

    arn, user, _ = make_app(harness, pg)
    clone = user + "_clone"
    harness.rotate(arn)
    other = unique_user("other")
    super_sql(pg, f'CREATE TABLE public."{other}" (id int)', f'GRANT SELECT ON public."{other}" TO "{clone}"')
    before = harness.value(arn)
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == "setSecret"
    assert (
        f"the master user cannot give '{user}' 1 privilege(s) its alternate login holds "
        f"(SELECT on table public.{other})" in str(failure.value.error)
    )
    assert harness.value(arn) == before
    token = harness.aws.invocations[-1].token
    super_sql(pg, f'GRANT SELECT ON public."{other}" TO "{user}"')
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    assert harness.value(arn)["username"] == user
    assert run_as(pg, harness.value(arn), f'SELECT count(*) FROM public."{other}"') == [(0,)]
