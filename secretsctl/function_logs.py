"""The rotation function's last error lines, from its CloudWatch Logs log group (``/aws/lambda/NAME``).

Lambda writes a function's output there; the rotation handler logs one JSON line per step with the
version's token and ``"status": "failed"`` on failure, and the runtime adds an ``errorMessage`` line.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


def log_group(function_arn: str) -> str:
    # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    parts = function_arn.split(":")
    name = parts[6] if len(parts) > 6 else function_arn
    return f"/aws/lambda/{name}"


def _readable(message: str) -> str:
    try:
        data = json.loads(message)
    except ValueError:
        return message.strip()
    if not isinstance(data, dict):
        return message.strip()
    if "errorMessage" in data:
        return f"{data.get('errorType', 'Error')}: {data['errorMessage']}"
    parts = [str(data.get("message", ""))]
    if data.get("error"):
        parts.append(str(data["error"]))
    return ": ".join(p for p in parts if p)


def error_lines(
    logs: Any, function_arn: str, token: str, since: datetime | None = None, limit: int = 5
) -> list[str] | None:
    """The function's error lines for one rotation (``token``), oldest first; ``None`` if unreadable."""
    kwargs: dict[str, Any] = {"logGroupName": log_group(function_arn), "limit": 1000}
    if since is not None:
        kwargs["startTime"] = int(since.timestamp() * 1000) - 60_000
    streams: dict[str, list[str]] = {}
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for event in page.get("events", []):
                streams.setdefault(event.get("logStreamName", ""), []).append(event.get("message", ""))
    except (ClientError, BotoCoreError):
        return None
    found: list[str] = []
    # Only streams that ran this rotation; there, the handler's failed steps and the runtime's errors.
    for messages in streams.values():
        if not any(token in m for m in messages):
            continue
        for message in messages:
            mine = token in message and '"status": "failed"' in message
            if mine or '"errorMessage"' in message:
                found.append(_readable(message))
    return found[-limit:]
