"""Password policy: CSPRNG, every class present, per-engine exclusions, AWS's environment names."""

from __future__ import annotations

import string

import pytest

from rotation_handlers.engines.mysql import MySQLEngine
from rotation_handlers.engines.postgres import PostgresEngine, scram_verifier
from rotation_handlers.errors import ConfigurationError
from rotation_handlers.passwords import PasswordPolicy


@pytest.mark.parametrize("engine", [MySQLEngine, PostgresEngine])
def test_defaults(engine: type) -> None:
    policy = PasswordPolicy.from_env(engine.default_exclude_characters, env={})
    for _ in range(200):
        pw = policy.generate()
        assert len(pw) == 32
        assert not set(pw) & set("/@\"'\\")
        assert any(c in string.ascii_lowercase for c in pw)
        assert any(c in string.ascii_uppercase for c in pw)
        assert any(c in string.digits for c in pw)
        assert any(c in string.punctuation for c in pw)
        if engine is PostgresEngine:
            assert ":" not in pw
    assert len({policy.generate() for _ in range(100)}) == 100


def test_aws_environment_names() -> None:
    env = {
        "PASSWORD_LENGTH": "20",
        "EXCLUDE_CHARACTERS": "abc",
        "EXCLUDE_PUNCTUATION": "true",
        "EXCLUDE_NUMBERS": "false",
    }
    policy = PasswordPolicy.from_env("", env=env)
    for _ in range(100):
        pw = policy.generate()
        assert len(pw) == 20
        assert not set(pw) & set("abc" + string.punctuation)
        assert any(c in string.digits for c in pw)


def test_require_each_included_type_can_be_switched_off() -> None:
    policy = PasswordPolicy.from_env("", env={"REQUIRE_EACH_INCLUDED_TYPE": "false", "PASSWORD_LENGTH": "8"})
    assert policy.require_each is False
    assert len(policy.generate()) == 8


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"PASSWORD_LENGTH": "abc"}, "PASSWORD_LENGTH must be a whole number, got 'abc'"),
        ({"PASSWORD_LENGTH": "5000"}, "PASSWORD_LENGTH must be between 8 and 4096, got 5000"),
        ({"EXCLUDE_NUMBERS": "perhaps"}, "EXCLUDE_NUMBERS must be true or false, got 'perhaps'"),
        (
            {
                "EXCLUDE_LOWERCASE": "true",
                "EXCLUDE_UPPERCASE": "true",
                "EXCLUDE_NUMBERS": "true",
                "EXCLUDE_PUNCTUATION": "true",
            },
            "excludes every character",
        ),
    ],
)
def test_bad_policy(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        PasswordPolicy.from_env("", env=env)


def test_scram_verifier_matches_postgres(pg_server: object) -> None:
    """Our client-side SCRAM verifier is byte-for-byte what PostgreSQL computes itself."""
    import base64

    from devtools.dbservers import PostgresServer

    assert isinstance(pg_server, PostgresServer)
    conn = pg_server.connect_super()
    with conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS scram_probe")
        cur.execute("CREATE ROLE scram_probe PASSWORD 'Probe-Password-1'")
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'")
        stored = cur.fetchone()[0]
        cur.execute("DROP ROLE scram_probe")
    conn.close()
    iterations = int(stored.split("$")[1].split(":")[0])
    salt = base64.b64decode(stored.split("$")[1].split(":")[1])
    assert scram_verifier("Probe-Password-1", salt, iterations) == stored
