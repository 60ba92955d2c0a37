"""Masking of secrets that are not JSON objects: a plain-text SecretString and a SecretBinary.

Every command that reads a value (``get``, ``versions``, ``diff``, ``dump``) runs over HTTP against
the emulated AWS; the ``run`` fixture's no-leak check then looks for each held value (for a binary
secret: its base64 and hex forms and every printable run of its bytes) in every output that was not
given ``--reveal``.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from secretsctl.errors import EXIT_DIFFERENT

PLAIN_OLD = "plain-old-token-qqqqqqqqqq"
PLAIN_NEW = "plain-new-token-rrrrrrrrrrrrr"
#: Printable runs around bytes that are not UTF-8 (0x95, 0x00, 0xff): a leak in any encoding shows.
BINARY_OLD = b"binary-old-sssssss\x95\x00\xffbinary-old-tail"
BINARY_NEW = b"binary-new-tttttttttt\x95\x00\xffbinary-new-tail"


def _plain(run) -> str:
    name = run.name("mask-plain")
    run.sm.create_secret(Name=name, SecretString=PLAIN_OLD)
    run.sm.put_secret_value(SecretId=name, SecretString=PLAIN_NEW)
    return name


def _binary(run) -> str:
    name = run.name("mask-bin")
    run.sm.create_secret(Name=name, SecretBinary=BINARY_OLD)
    run.sm.put_secret_value(SecretId=name, SecretBinary=BINARY_NEW)
    return name


def test_get_masks_a_plain_text_secret(run) -> None:
    name = _plain(run)
    doc = run.json("secret", "get", name)
    assert doc["value"] == {"masked": True, "length": len(PLAIN_NEW)}
    table = run.run("secret", "get", name).stdout
    assert f"<masked: {len(PLAIN_NEW)} chars>" in table
    previous = run.json("secret", "get", name, "--stage", "AWSPREVIOUS")
    assert previous["value"] == {"masked": True, "length": len(PLAIN_OLD)}


def test_get_masks_a_binary_secret(run) -> None:
    name = _binary(run)
    doc = run.json("secret", "get", name)
    assert doc["value"] == {"masked": True, "length": len(BINARY_NEW)}
    table = run.run("secret", "get", name).stdout
    assert f"<masked: {len(BINARY_NEW)} chars>" in table
    previous = run.json("secret", "get", name, "--stage", "AWSPREVIOUS")
    assert previous["value"] == {"masked": True, "length": len(BINARY_OLD)}


def test_versions_of_plain_and_binary_secrets_show_no_value(run) -> None:
    for name in (_plain(run), _binary(run)):
        doc = run.json("secret", "versions", name)
        assert sorted(s for v in doc["versions"] for s in v["stages"]) == ["AWSCURRENT", "AWSPREVIOUS"]
        assert doc["versions"][0]["versionId"] in run.run("secret", "versions", name).stdout


def test_diff_masks_plain_text_versions(run) -> None:
    name = _plain(run)
    doc = run.json("secret", "diff", name, expect=EXIT_DIFFERENT)
    assert doc["keys"] == [
        {
            "key": "(value)",
            "change": "changed",
            "from": {"masked": True, "length": len(PLAIN_OLD)},
            "to": {"masked": True, "length": len(PLAIN_NEW)},
        }
    ]
    table = run.run("secret", "diff", name, expect=EXIT_DIFFERENT).stdout
    assert f"<masked: {len(PLAIN_OLD)} chars>" in table and f"<masked: {len(PLAIN_NEW)} chars>" in table


def test_diff_masks_binary_versions(run) -> None:
    name = _binary(run)
    doc = run.json("secret", "diff", name, expect=EXIT_DIFFERENT)
    assert doc["different"] is True
    assert [(k["key"], k["change"]) for k in doc["keys"]] == [("(value)", "changed")]
    assert doc["keys"][0]["from"] == {"masked": True, "length": len(BINARY_OLD)}
    assert doc["keys"][0]["to"] == {"masked": True, "length": len(BINARY_NEW)}
    table = run.run("secret", "diff", name, expect=EXIT_DIFFERENT).stdout
    assert f"<masked: {len(BINARY_NEW)} chars>" in table
    run.run("secret", "diff", name, "AWSCURRENT", "AWSCURRENT")


def test_dump_writes_plain_and_binary_values_exactly_and_prints_none(run, tmp_path: Path) -> None:
    plain, binary = _plain(run), _binary(run)
    doc = run.json("secret", "dump", plain, binary, "--to", str(tmp_path / "out"))
    files = {f["name"]: Path(f["file"]) for f in doc["files"]}
    assert files[plain].read_text() == PLAIN_NEW + "\n"
    assert files[binary].read_bytes() == BINARY_NEW
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files.values())
    table = run.run("secret", "dump", plain, binary, "--to", str(tmp_path / "again")).stdout
    assert plain in table and binary in table
    assert json.dumps(doc)  # the document itself went through the leak check


def test_dump_all_writes_binary_secrets_too(run, tmp_path: Path) -> None:
    binary = _binary(run)
    doc = run.json("secret", "dump", "--all", "--to", str(tmp_path / "all"))
    (written,) = [Path(f["file"]) for f in doc["files"] if f["name"] == binary]
    assert written.suffix == ".bin" and written.read_bytes() == BINARY_NEW
