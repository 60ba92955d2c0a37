"""The gate and bad input: clear errors that name the problem, and nothing written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from devtools.aws import StepFailed
from devtools.dbservers import PostgresServer
from rotation_handlers.errors import InvalidEventError, InvalidSecretError, RotationStateError

from .conftest import Db, Harness, new_password, pg_db, unique_user

PORT_ERROR = "'port' must be a number from 1 to 65535 (an integer or a string of ASCII digits)"
SSL_ERROR = '\'ssl\' must be true or false (a boolean or the string "true" or "false")'


def make_secret(harness: Harness, db: Db, **extra: object) -> str:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    return harness.create_secret(db.secret(user, password, **extra))


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "missing 'SecretId'; missing 'ClientRequestToken'; missing 'Step'"),
        (
            {"SecretId": "s", "ClientRequestToken": "t" * 36, "Step": "dropSecret"},
            "unknown Step 'dropSecret'",
        ),
        (
            {"SecretId": "", "ClientRequestToken": "t" * 36, "Step": "setSecret"},
            "'SecretId' must be a non-empty",
        ),
        ({"SecretId": "s", "ClientRequestToken": "short", "Step": "setSecret"}, "32 to 64 characters"),
        ({"SecretId": "s", "ClientRequestToken": 5, "Step": "setSecret"}, "'ClientRequestToken' must be"),
        (
            {"SecretId": "s", "ClientRequestToken": "t" * 36, "Step": "setSecret", "RotationToken": 3},
            "'RotationToken' must be a string",
        ),
        (["not", "an", "object"], "expected a JSON object"),
    ],
)
def test_malformed_event_is_refused_before_any_call(harness: Harness, event: object, message: str) -> None:
    assert harness.aws.handler is not None
    with pytest.raises(InvalidEventError, match="invalid rotation event") as exc:
        harness.aws.handler(event, None)  # type: ignore[arg-type]
    assert message in str(exc.value)
    assert harness.counter.total == 0


def test_wrong_token(harness: Harness, db: Db) -> None:
    arn = make_secret(harness, db)
    harness.rotate(arn)
    before = harness.versions(arn)
    wrong = str(uuid.uuid4())
    with pytest.raises(RotationStateError, match=f"ClientRequestToken {wrong} is not a version of secret"):
        harness.invoke(arn, wrong, "createSecret")
    assert harness.versions(arn) == before


def test_rotation_not_enabled(harness: Harness, db: Db) -> None:
    arn = make_secret(harness, db)
    token = str(uuid.uuid4())
    harness.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString="{}", VersionStages=["AWSPENDING"]
    )
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        with pytest.raises(RotationStateError, match="rotation is not enabled for secret"):
            harness.invoke(arn, token, step)
    assert harness.versions(arn)[token] == ["AWSPENDING"]


def test_token_already_current_is_a_no_op(harness: Harness, db: Db) -> None:
    arn = make_secret(harness, db)
    token = harness.rotate(arn)
    before = harness.versions(arn)
    value = harness.value(arn)
    calls_before = harness.counter.total
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        result = harness.invoke(arn, token, step)
        assert result["outcome"].startswith("already current")
    assert harness.versions(arn) == before
    assert harness.value(arn) == value
    assert harness.counter.total - calls_before == 4  # one DescribeSecret per step, nothing else


def test_token_that_is_not_pending(harness: Harness, db: Db) -> None:
    arn = make_secret(harness, db)
    harness.rotate(arn)
    harness.rotate(arn)
    previous = next(v for v, s in harness.versions(arn).items() if "AWSPREVIOUS" in s)
    with pytest.raises(RotationStateError, match=r"is not AWSPENDING \(its labels: \['AWSPREVIOUS'\]\)"):
        harness.invoke(arn, previous, "setSecret")


def assert_rotation_fails_cleanly(harness: Harness, arn: str, error: type, match: str) -> None:
    """RotateSecret fails in createSecret with ``match``; AWSCURRENT unchanged, no pending value."""
    before = harness.sm.get_secret_value(SecretId=arn)["SecretString"]
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == "createSecret"
    assert isinstance(failure.value.error, error), failure.value.error
    assert match in str(failure.value.error), str(failure.value.error)
    assert harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"] == before
    token = harness.aws.invocations[-1].token
    with pytest.raises(harness.sm.exceptions.ResourceNotFoundException):
        harness.sm.get_secret_value(SecretId=arn, VersionId=token)
    assert "PutSecretValue" not in harness.counter.calls


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.pop("host"), "missing key 'host'"),
        (lambda s: s.pop("username"), "missing key 'username'"),
        (lambda s: s.pop("password"), "missing key 'password'"),
        (
            lambda s: s.update(engine="oracle"),
            "unknown engine 'oracle' (supported: mysql, aurora-mysql, mariadb",
        ),
        (lambda s: s.update(port="abc"), PORT_ERROR + ", got a string that is not one"),
        (lambda s: s.update(port=70000), PORT_ERROR + ", got a number out of range"),
        (lambda s: s.update(port="\uff15\uff14\uff13\uff12"), PORT_ERROR + ", got a string that is not one"),
        (lambda s: s.update(port="\u0665\u0664\u0663\u0662"), PORT_ERROR + ", got a string that is not one"),
        (lambda s: s.update(port="\u00b2"), PORT_ERROR + ", got a string that is not one"),
        (lambda s: s.update(ssl="maybe"), SSL_ERROR + ", got a string that is not one"),
        (
            lambda s: s.update(password="Init-\ud800-half-a-pair"),
            "'password' must be Unicode text, got a string with a lone surrogate escape",
        ),
        (lambda s: (s.pop("host"), s.update(port=0)), "missing key 'host'; 'port' must be a number"),
    ],
    ids=[
        "no-host",
        "no-username",
        "no-password",
        "unknown-engine",
        "bad-port",
        "port-range",
        "full-width-digits",
        "arabic-indic-digits",
        "superscript-two",
        "bad-ssl",
        "lone-surrogate-password",
        "all-problems-at-once",
    ],
)
def test_invalid_secret_is_refused_before_anything_is_written(
    harness: Harness, db: Db, mutate: object, match: str
) -> None:
    user, password = unique_user(), new_password()
    value = db.secret(user, password)
    mutate(value)  # type: ignore[operator]
    arn = harness.create_secret(value)
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, match)


PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDSecretKeyBody"


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (
            "ssl",
            {
                "key": f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----",
                "passphrase": "Hunter2-pp",
            },
            SSL_ERROR + ", got an object",
        ),
        ("ssl", "Hunter2-ssl-text", SSL_ERROR + ", got a string that is not one"),
        ("ssl", ["Hunter2-in-a-list"], SSL_ERROR + ", got a list"),
        ("port", "Hunter2-port-text", PORT_ERROR + ", got a string that is not one"),
        ("port", 99999123, PORT_ERROR + ", got a number out of range"),
        ("port", 5432.5, PORT_ERROR + ", got a decimal number"),
        ("dbname", {"Hunter2-key": "Hunter2-db"}, "'dbname' must be a string, got an object"),
        ("masterarn", ["Hunter2-arn"], "'masterarn' must be a non-empty string"),
    ],
    ids=[
        "ssl-node-style-key",
        "ssl-text",
        "ssl-list",
        "port-text",
        "port-range",
        "port-float",
        "dbname",
        "masterarn",
    ],
)
def test_bad_field_values_are_never_quoted(
    harness: Harness, pg_server: PostgresServer, key: str, value: object, match: str
) -> None:
    """An error names the field and the expected shape; the value (maybe key material) is never quoted.

    Parsing does not depend on the engine: one engine is enough."""
    secret = pg_db(pg_server).secret(unique_user(), new_password())
    secret[key] = value
    arn = harness.create_secret(secret)
    texts = [PEM_BODY, "Hunter2", "99999123", "5432.5"]
    # The harness fails the test if any of these shows up in a log line, stdout, stderr or an error.
    harness.passwords.update(texts)
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, match)
    message = str(harness.aws.invocations[-1].error)
    assert not [text for text in texts if text in message], message


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("not json", "the AWSCURRENT version is not valid JSON"),
        ('["a list"]', "must be a JSON object, got list"),
    ],
)
def test_unparseable_secret(harness: Harness, raw: str, match: str) -> None:
    arn = harness.sm.create_secret(Name="raw-" + uuid.uuid4().hex[:6], SecretString=raw)["ARN"]
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, match)


def test_bad_password_policy_is_reported_before_writing(
    harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rotation_handlers.errors import ConfigurationError

    arn = make_secret(harness, db)
    monkeypatch.setenv("PASSWORD_LENGTH", "4")
    assert_rotation_fails_cleanly(harness, arn, ConfigurationError, "PASSWORD_LENGTH must be between 8 and")


def test_missing_ca_bundle_is_reported_before_writing(
    harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rotation_handlers.errors import ConfigurationError

    arn = make_secret(harness, db)
    monkeypatch.setenv("DB_CA_BUNDLE", "/nonexistent/ca.pem")
    assert_rotation_fails_cleanly(
        harness, arn, ConfigurationError, "DB_CA_BUNDLE points to '/nonexistent/ca.pem'"
    )


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"", "empty"),
        (b"not a certificate\n", "garbage"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "bad-pem"),
    ],
    ids=["empty", "garbage", "bad-pem"],
)
def test_unusable_ca_bundle_is_reported_before_writing(
    harness: Harness,
    pg_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: bytes,
    what: str,
) -> None:
    from rotation_handlers.errors import ConfigurationError

    arn = make_secret(harness, pg_db(pg_server))
    bundle = tmp_path / f"{what}.pem"
    bundle.write_bytes(content)
    monkeypatch.setenv("DB_CA_BUNDLE", str(bundle))
    assert_rotation_fails_cleanly(
        harness,
        arn,
        ConfigurationError,
        f"DB_CA_BUNDLE points to '{bundle}', which holds no usable CA certificate",
    )


def test_pinned_strategy_mismatch(harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = make_secret(harness, db)
    monkeypatch.setenv("ROTATION_STRATEGY", "alternating")
    assert_rotation_fails_cleanly(
        harness,
        arn,
        InvalidSecretError,
        "pinned to alternating-user rotation (ROTATION_STRATEGY) but the secret has no 'masterarn'",
    )


ROTATION_TOKEN = "7a0ad9c4-6f4e-4a55-9d0e-3c9f6a4c5e01"


def start_rotation_without_running_it(harness: Harness, arn: str) -> str:
    """RotateSecret creates the AWSPENDING version and enables rotation; the steps do nothing."""
    real = harness.aws.handler
    harness.aws.handler = lambda event, context: None
    try:
        return harness.rotate(arn)
    finally:
        harness.aws.handler = real


def test_rotation_token_is_passed_to_put_secret_value(harness: Harness, db: Db) -> None:
    from rotation_handlers import secrets_manager

    arn = make_secret(harness, db)
    token = start_rotation_without_running_it(harness, arn)
    seen: list[dict[str, object]] = []
    secrets_manager.client(harness.aws.region).meta.events.register(
        "provide-client-params.secrets-manager.PutSecretValue", lambda params, **_: seen.append(dict(params))
    )
    assert harness.aws.handler is not None
    harness.aws.handler(
        {
            "SecretId": arn,
            "ClientRequestToken": token,
            "Step": "createSecret",
            "RotationToken": ROTATION_TOKEN,
        },
        None,
    )
    assert len(seen) == 1
    assert seen[0]["RotationToken"] == ROTATION_TOKEN
    assert seen[0]["ClientRequestToken"] == token
    assert seen[0]["VersionStages"] == ["AWSPENDING"]


def test_pending_with_a_value_is_kept(harness: Harness, db: Db) -> None:
    arn = make_secret(harness, db)
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    first = harness.value(arn, "AWSPENDING")
    harness.invoke(arn, token, "createSecret")
    assert harness.value(arn, "AWSPENDING") == first
    assert harness.counter.calls["PutSecretValue"] == 1


def test_pending_for_another_user_is_refused_in_set_secret(harness: Harness, db: Db) -> None:
    arn = make_secret(harness, db)
    token = start_rotation_without_running_it(harness, arn)
    other = dict(harness.value(arn), username="someone_else")
    harness.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(other), VersionStages=["AWSPENDING"]
    )
    with pytest.raises(InvalidSecretError, match="user 'someone_else' differs from the current"):
        harness.invoke(arn, token, "setSecret")
    assert harness.counter.calls.get("PutSecretValue", 0) == 0
