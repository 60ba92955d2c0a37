"""The log formatter: one JSON object per line, registered secrets never printed."""

from __future__ import annotations

import json
import logging

from rotation_handlers import logs


def test_secret_with_json_special_characters_is_scrubbed() -> None:
    secret = 'pa"ss\\word-with-"quotes"'
    logs.register_secret(secret)
    record = logging.LogRecord("rotation_handlers.x", logging.INFO, __file__, 1, f"msg {secret}", None, None)
    record.fields = {"nested": {"list": [secret, 1]}, "error": f"driver said '{secret}'"}
    line = logs.JsonFormatter().format(record)
    assert secret not in line
    assert json.dumps(secret)[1:-1] not in line
    parsed = json.loads(line)
    assert parsed["message"] == "msg ***"
    assert parsed["nested"] == {"list": ["***", 1]}


def test_short_values_are_not_registered() -> None:
    logs.register_secret("ab", None, "")
    assert logs.redact("ab") == "ab"
