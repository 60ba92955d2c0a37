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


def lacks_a_class(password: str, policy: PasswordPolicy) -> bool:
    return any(not set(password) & set(pool) for pool in policy.classes)


@pytest.mark.parametrize("require", ["true", "false"])
def test_require_each_included_type_can_be_switched_off(require: str) -> None:
    """Off, a short password may lack a class (about 4 in 10 do at length 8); on, none does."""
    policy = PasswordPolicy.from_env("", env={"REQUIRE_EACH_INCLUDED_TYPE": require, "PASSWORD_LENGTH": "8"})
    assert len(policy.classes) == 4
    passwords = [policy.generate() for _ in range(300)]
    assert all(len(pw) == 8 for pw in passwords)
    lacking = [pw for pw in passwords if lacks_a_class(pw, policy)]
    if require == "true":
        assert lacking == []
    else:
        # 300 draws all containing every class would happen with probability below 1e-60.
        assert lacking


def test_passwords_come_from_the_secrets_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every character is drawn with ``secrets.choice`` (the OS CSPRNG), nothing else.

    ``secrets.choice`` is replaced by a predictable stand-in: the password must be exactly
    what the stand-in chose, so a character from ``random`` (or anywhere else) shows.
    """
    from rotation_handlers import passwords

    env = {
        "PASSWORD_LENGTH": "10",
        "EXCLUDE_UPPERCASE": "true",
        "EXCLUDE_PUNCTUATION": "true",
        "EXCLUDE_CHARACTERS": "cdefghijklmnopqrstuvwxyz23456789",
    }
    policy = PasswordPolicy.from_env("", env=env)
    assert policy.classes == ("ab", "01")
    drawn: list[str] = []

    def stand_in(seq: str) -> str:
        assert seq == "ab01", seq
        drawn.append(seq[len(drawn) % len(seq)])
        return drawn[-1]

    monkeypatch.setattr(passwords.secrets, "choice", stand_in)
    assert policy.generate() == "ab01ab01ab"
    assert len(drawn) == 10


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
