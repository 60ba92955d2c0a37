"""An unexpected error (not a RotationError) whose message carries a password is scrubbed by the handler.

Engine.statement_hook runs inside the step, right before the connection attempt: raising
there stands for any library error that quotes its arguments.
"""

from __future__ import annotations

import logging

import pytest

from rotation_handlers.engines.base import Engine
from rotation_handlers.errors import RotationError

from .conftest import Db, Harness, RawRecords, new_password, unique_user
from .test_gate_and_input import start_rotation_without_running_it


def test_unexpected_error_quoting_passwords_is_redacted(harness: Harness, db: Db) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    pending = harness.value(arn, "AWSPENDING")["password"]

    def explode(phase: str, label: str) -> None:
        raise KeyError(f"driver state dump: current={password} pending={pending}")

    Engine.statement_hook = explode
    records = RawRecords()  # what our code hands to logging, before the formatter's own scrub
    logging.getLogger("rotation_handlers").addHandler(records)
    try:
        with pytest.raises(RotationError) as failure:
            harness.invoke(arn, token, "setSecret")
    finally:
        logging.getLogger("rotation_handlers").removeHandler(records)
        Engine.statement_hook = None

    message = str(failure.value)
    assert type(failure.value) is RotationError
    assert message == "unexpected KeyError: 'driver state dump: current=*** pending=***'"
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
    (line,) = [text for text in records.lines if "setSecret failed" in text]
    assert "current=*** pending=***" in line
    for text in [message, *records.lines]:
        assert password not in text and pending not in text
    # Nothing was changed: the current password still logs in.
    assert db.login(user, password)
