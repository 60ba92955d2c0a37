"""Helpers for the Parameter Store command tests: values held by the emulated SSM, the leak check."""

from __future__ import annotations

import secrets as _secrets
from typing import Any

import pytest


def ssm_held_values() -> set[str]:
    """Every parameter value (each version, each region, SecureString decrypted) the emulated AWS holds."""
    from moto.ssm.models import ssm_backends

    found: set[str] = set()
    for account in ssm_backends.values():
        for backend in account.values():
            for name, versions in list(backend._parameters.items()):
                if name.startswith("/aws/"):
                    continue
                for p in versions:
                    value = p.decrypt(p.value) if p.parameter_type == "SecureString" else p.value
                    if value:
                        found.update({value, *value.split(",")})
    return {v for v in found if len(v) >= 8}


def assert_no_parameter_value_leaked(run: Any) -> None:
    values = ssm_held_values()
    leaked = [
        " ".join(argv)
        for argv, text in run.outputs
        if "--reveal" not in argv and any(v in text for v in values)
    ]
    assert not leaked, f"a parameter value appeared in the output of: {leaked}"


@pytest.fixture
def param_run(run: Any) -> Any:
    """``run`` plus the check that no output (without --reveal) holds any parameter value."""
    yield run
    assert_no_parameter_value_leaked(run)


def value(tag: str = "v") -> str:
    """A unique value, long enough for the leak check."""
    return f"{tag}-{_secrets.token_hex(8)}"


def prefix() -> str:
    """A unique path per test: the emulated AWS is shared by the whole package."""
    return f"/t{_secrets.token_hex(4)}/"
