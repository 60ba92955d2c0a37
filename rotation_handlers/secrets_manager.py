"""The few Secrets Manager calls the rotation protocol makes, with a version cache.

A secret version's value never changes once written (PutSecretValue with the same
token and another value is refused), so values are cached by version id for the
life of a warm Lambda container: the four steps of one rotation usually run in
the same container, and later steps then need no GetSecretValue at all.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .errors import RotationError, RotationStateError
from .logs import register_secret

_CACHE_TTL_SECONDS = 900
_CACHE_MAX = 256


@dataclass(frozen=True)
class SecretMetadata:
    arn: str
    name: str
    rotation_enabled: bool
    versions: dict[str, list[str]]  # version id -> staging labels

    def version_with(self, stage: str) -> str | None:
        return next((v for v, stages in self.versions.items() if stage in stages), None)


class _VersionCache:
    """Version values, and which versions passed testSecret, as this container saw them.

    Both facts are about an immutable version, so both stay true for as long as they are kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[float, str]] = {}
        self._tested: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def get(self, arn: str, version_id: str) -> str | None:
        with self._lock:
            item = self._items.get((arn, version_id))
            if item is None or time.monotonic() - item[0] > _CACHE_TTL_SECONDS:
                self._items.pop((arn, version_id), None)
                return None
            return item[1]

    def put(self, arn: str, version_id: str, value: str) -> None:
        with self._lock:
            if len(self._items) >= _CACHE_MAX:
                self._items.pop(next(iter(self._items)))
            self._items[(arn, version_id)] = (time.monotonic(), value)

    def mark_tested(self, arn: str, version_id: str, facts: dict[str, Any] | None = None) -> None:
        """testSecret proved this version's credentials (a login as the expected user); ``facts``:
        what it learnt on the way (strategy, engine) for finishSecret to report."""
        with self._lock:
            if len(self._tested) >= _CACHE_MAX:
                self._tested.pop(next(iter(self._tested)))
            self._tested[(arn, version_id)] = (time.monotonic(), dict(facts or {}))

    def tested(self, arn: str, version_id: str) -> dict[str, Any] | None:
        """The facts of the testSecret that proved this version here, or None when none did."""
        with self._lock:
            item = self._tested.get((arn, version_id))
            if item is None or time.monotonic() - item[0] > _CACHE_TTL_SECONDS:
                self._tested.pop((arn, version_id), None)
                return None
            return dict(item[1])

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._tested.clear()


VERSION_CACHE = _VersionCache()
_client_lock = threading.Lock()
_clients: dict[str | None, Any] = {}
_session: Any = None


def client(region: str | None = None) -> Any:
    """One client per region and container; standard retry mode, endpoints from botocore's config.

    botocore directly, not boto3: boto3's import also loads s3transfer and multiprocessing
    (62 modules, 25-50 ms of a cold start measured here) for nothing this function uses.
    Credentials, regions and endpoint settings (``AWS_ENDPOINT_URL`` ...) are botocore's
    in either case.
    """
    global _session
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    with _client_lock:
        if region not in _clients:
            if _session is None:
                _session = botocore.session.get_session()
            _clients[region] = _session.create_client(
                "secretsmanager",
                region_name=region,
                # Standard retries (throttling, 5xx) with short timeouts: an unreachable endpoint
                # (no VPC endpoint or NAT) fails in seconds with a clear error, not at the
                # Lambda timeout.
                config=Config(
                    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10
                ),
            )
        return _clients[region]


def reset_clients() -> None:
    global _session
    with _client_lock:
        _clients.clear()
        _session = None
    VERSION_CACHE.clear()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _api_error(action: str, secret_id: str, exc: Exception) -> RotationError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return RotationError(f"{action} for {secret_id} failed: {err.get('Code')}: {err.get('Message')}")
    return RotationError(f"{action} for {secret_id} failed: {exc}")


class SecretsManager:
    """Secrets Manager operations on one secret, as the protocol needs them."""

    def __init__(self, secret_id: str, sm_client: Any | None = None) -> None:
        self.secret_id = secret_id
        self.client = sm_client or client(_region_of(secret_id))
        self.arn = secret_id

    def describe(self) -> SecretMetadata:
        try:
            resp = self.client.describe_secret(SecretId=self.secret_id)
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                raise RotationStateError(f"secret {self.secret_id} does not exist") from None
            raise _api_error("DescribeSecret", self.secret_id, exc) from None
        except BotoCoreError as exc:
            raise _api_error("DescribeSecret", self.secret_id, exc) from None
        self.arn = resp["ARN"]
        return SecretMetadata(
            arn=resp["ARN"],
            name=resp.get("Name", ""),
            rotation_enabled=bool(resp.get("RotationEnabled", False)),
            versions={k: list(v) for k, v in (resp.get("VersionIdsToStages") or {}).items()},
        )

    def get_value(
        self, version_id: str, stage: str | None = None, secret_id: str | None = None
    ) -> str | None:
        """The SecretString of ``version_id``, or None when that version has no value yet."""
        target = secret_id or self.arn
        cached = VERSION_CACHE.get(target, version_id)
        if cached is not None:
            return cached
        kwargs: dict[str, Any] = {"SecretId": target, "VersionId": version_id}
        if stage:
            kwargs["VersionStage"] = stage
        try:
            resp = self.client.get_secret_value(**kwargs)
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None
            raise _api_error("GetSecretValue", target, exc) from None
        except BotoCoreError as exc:
            raise _api_error("GetSecretValue", target, exc) from None
        value = resp.get("SecretString")
        if value is not None:
            register_secret(value)
            VERSION_CACHE.put(target, version_id, value)
        return value

    def get_current(self, secret_id: str) -> str | None:
        """AWSCURRENT of another secret (the master secret), by ARN or name; not cached."""
        try:
            resp = self.client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
        except (ClientError, BotoCoreError) as exc:
            raise _api_error("GetSecretValue", secret_id, exc) from None
        value = resp.get("SecretString")
        register_secret(value)
        return value

    def put_pending(self, token: str, value: str, rotation_token: str | None) -> bool:
        """Store the pending value; False when another attempt already stored one."""
        kwargs: dict[str, Any] = {
            "SecretId": self.arn,
            "ClientRequestToken": token,
            "SecretString": value,
            "VersionStages": ["AWSPENDING"],
        }
        if rotation_token:
            kwargs["RotationToken"] = rotation_token
        try:
            self.client.put_secret_value(**kwargs)
        except ClientError as exc:
            if _error_code(exc) == "ResourceExistsException":
                # A concurrent createSecret stored a value under this token first: keep that one.
                return False
            raise _api_error("PutSecretValue", self.arn, exc) from None
        except BotoCoreError as exc:
            raise _api_error("PutSecretValue", self.arn, exc) from None
        VERSION_CACHE.put(self.arn, token, value)
        return True

    def move_stage(self, stage: str, to_version: str | None, from_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": self.arn, "VersionStage": stage}
        if to_version:
            kwargs["MoveToVersionId"] = to_version
        if from_version:
            kwargs["RemoveFromVersionId"] = from_version
        try:
            self.client.update_secret_version_stage(**kwargs)
        except ClientError as exc:
            # A retried call whose first attempt was done but whose answer was lost (a timeout,
            # a 5xx) is refused ("Version stage X not found in version Y"): if the labels already
            # are where this call puts them, the move is done.
            if _error_code(exc) == "InvalidParameterException" and self._stage_is(
                stage, to_version, from_version
            ):
                return
            raise _api_error(f"UpdateSecretVersionStage({stage})", self.arn, exc) from None
        except BotoCoreError as exc:
            raise _api_error(f"UpdateSecretVersionStage({stage})", self.arn, exc) from None

    def _stage_is(self, stage: str, on_version: str | None, not_on_version: str | None) -> bool:
        try:
            versions = self.describe().versions
        except RotationError:
            return False
        on = on_version is None or stage in versions.get(on_version, [])
        off = not_on_version is None or stage not in versions.get(not_on_version, [])
        return on and off


def _region_of(secret_id: str) -> str | None:
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager":
        return parts[3] or None
    return None
