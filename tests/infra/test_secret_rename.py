"""A created secret's name cannot change in place: synth refuses, and says how to rename.

AWS behaviour: ``Name`` of ``AWS::SecretsManager::Secret`` is "Update requires: Replacement"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secret.html#cfn-secretsmanager-secret-name):
CloudFormation creates a new secret (a newly generated password the database never got), moves the
rotation schedule's ``SecretId`` to it, and retains the old one unattached. Secrets Manager has no
rename (``UpdateSecret`` takes no new name:
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecret.html).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import aws_cdk as cdk
import pytest

from infra.config import ConfigError, load_config
from infra.stacks import add_stacks, secret_names_file
from tests.infra.conftest import EXAMPLE, NO_BUNDLING


def _config_copy(tmp_path: Path) -> Path:
    """The example configuration as ``prod.json``, with its record of created secrets."""
    path = tmp_path / "prod.json"
    shutil.copy(EXAMPLE, path)
    shutil.copy(EXAMPLE.parent / "schema.json", tmp_path / "schema.json")
    shutil.copy(secret_names_file(EXAMPLE), secret_names_file(path))
    return path


def _add(path: Path) -> None:
    add_stacks(cdk.App(context=NO_BUNDLING), load_config(path), secret_names=secret_names_file(path))


def test_the_recorded_names_are_kept_and_a_rename_is_refused(tmp_path: Path) -> None:
    path = _config_copy(tmp_path)
    _add(path)
    pins = secret_names_file(path)
    assert pins == tmp_path / "prod.secret-names.json"
    recorded = json.loads(pins.read_text())["secretNames"]
    assert recorded == {
        "payments-master": "prod/payments/master",
        "payments-app": "prod/payments/app",
        "reports-app": "prod/reports/app",
    }

    raw = json.loads(path.read_text())
    raw["rotation"]["secrets"][2]["create"]["secretName"] = "prod/payments/application"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as info:
        _add(path)
    (error,) = info.value.errors
    assert error.startswith(
        "rotation.secrets[2].create.secretName: 'prod/payments/application' is not the name recorded for "
        "this entry ('prod/payments/app', as deployed)"
    )
    assert "new entry" in error  # how to rename
    assert json.loads(pins.read_text())["secretNames"] == recorded  # nothing changed


def test_a_new_entry_is_recorded_and_a_removed_one_forgotten(tmp_path: Path) -> None:
    path = _config_copy(tmp_path)
    _add(path)
    raw = json.loads(path.read_text())
    entry = raw["rotation"]["secrets"].pop(2)  # payments-app retired
    entry["name"] = "payments-app2"
    entry["create"]["secretName"] = "prod/payments/app2"  # its successor: a new secret
    raw["rotation"]["secrets"].append(entry)
    path.write_text(json.dumps(raw))
    _add(path)
    recorded = json.loads(secret_names_file(path).read_text())["secretNames"]
    assert recorded == {
        "payments-master": "prod/payments/master",
        "payments-app2": "prod/payments/app2",
        "reports-app": "prod/reports/app",
    }


def test_a_read_only_checkout_still_synthesizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI may synthesize from a read-only checkout: the record is then checked, not written."""
    path = _config_copy(tmp_path)
    raw = json.loads(path.read_text())
    raw["rotation"]["secrets"] = [s for s in raw["rotation"]["secrets"] if s["name"] != "reports-app"]
    path.write_text(json.dumps(raw))  # the record would change: reports-app forgotten
    record = secret_names_file(path)
    before = record.read_bytes()
    real_write = Path.write_text

    def read_only(self: Path, *args: object, **kwargs: object) -> int:
        if self == record:
            raise PermissionError(13, "Permission denied", str(self))
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", read_only)
    _add(path)
    assert record.read_bytes() == before
