"""The secret's ``ssl`` key: true/false as JSON booleans or strings in any case and spacing, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotation_handlers.errors import InvalidSecretError
from rotation_handlers.secret import parse_secret


def secret_with_ssl(value: Any) -> str:
    return json.dumps(
        {"engine": "postgres", "host": "db", "username": "app", "password": "Pw-123456", "ssl": value}
    )


@pytest.mark.parametrize(
    ("value", "tls"),
    [
        (False, False),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        (" false ", False),
        (True, True),
        ("true", True),
        ("True", True),
        (" true ", True),
        ("TRUE", True),
    ],
)
def test_ssl_flag_spellings(value: Any, tls: bool) -> None:
    assert parse_secret(secret_with_ssl(value), "AWSCURRENT").tls is tls


def test_tls_is_on_without_the_key() -> None:
    raw = json.dumps({"engine": "mariadb", "host": "db", "username": "app", "password": "Pw-123456"})
    assert parse_secret(raw, "AWSCURRENT").tls is True


@pytest.mark.parametrize("value", [0, 1, None, "", "yes", "no", "0", "off", "f", "truee", [], {}, 1.0])
def test_other_ssl_values_are_refused(value: Any) -> None:
    expected = (
        r"'ssl' must be true or false \(a boolean or the string \"true\" or \"false\"\), "
        r"got (an? |null$)"
    )
    with pytest.raises(InvalidSecretError, match=expected) as failure:
        parse_secret(secret_with_ssl(value), "AWSCURRENT")
    assert "Pw-123456" not in str(failure.value)
    if isinstance(value, str) and value:
        assert repr(value) not in str(failure.value)  # the kind of value is named, never the value
