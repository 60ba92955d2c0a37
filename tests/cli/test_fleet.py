"""status across accounts: several account ids behind one emulated AWS (moto routes the calls made
with AssumeRole credentials to the role's account)."""

from __future__ import annotations

import json

import boto3

from secretsctl.errors import EXIT_ERROR, EXIT_FINDINGS

ROLE = "secretsctl-readonly"


def _account_client(run, account: str, service: str):
    sts = run.emulated.client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.client(
        service,
        endpoint_url=run.emulated.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_status_across_accounts_one_table_same_exit_code(run, tmp_path, api_calls) -> None:
    accounts = ["111111111111", "222222222222"]
    names = {}
    for account in accounts:
        sm = _account_client(run, account, "secretsmanager")
        names[account] = run.name(f"fleet{account[:1]}")
        sm.create_secret(Name=names[account], SecretString=json.dumps({"password": f"Fleet-pw-{account}"}))
    listing = tmp_path / "accounts.txt"
    listing.write_text("# the fleet\n111111111111  payments\n222222222222\n")
    doc = run.json("status", "--accounts", str(listing), "--role", ROLE)
    by_account = {t["account"]: t for t in doc["targets"]}
    assert set(by_account) == set(accounts) and doc["kind"] == "FleetRotationStatus"
    for account in accounts:
        assert [s["name"] for s in by_account[account]["secrets"]] == [names[account]]
        assert by_account[account]["error"] is None
    assert api_calls.counts["sts.AssumeRole"] == 2
    assert api_calls.counts.get("secretsmanager.GetSecretValue", 0) == 0
    table = run.run(
        "status", "--accounts", str(listing), "--role", ROLE, "--fail-on", "disabled", expect=EXIT_FINDINGS
    )
    assert names["111111111111"] in table.stdout and names["222222222222"] in table.stdout
    run.run("status", "--accounts", str(listing), expect=2)  # --role missing
    bad = tmp_path / "bad.txt"
    bad.write_text("12345\n")
    assert (
        "not a 12-digit"
        in run.run("status", "--accounts", str(bad), "--role", ROLE, expect=EXIT_ERROR).stderr
    )


def test_status_across_the_organization(run, api_calls) -> None:
    org = run.emulated.client("organizations")
    try:
        org.create_organization(FeatureSet="ALL")
    except org.exceptions.AlreadyInOrganizationException:
        pass
    created = org.create_account(AccountName="fleet-member", Email="fleet@example.com")["CreateAccountStatus"]
    member = created["AccountId"]
    sm = _account_client(run, member, "secretsmanager")
    name = run.name("orgfleet")
    sm.create_secret(Name=name, SecretString=json.dumps({"password": "Org-fleet-pw-123456"}))
    doc = run.json("status", "--organization", "--role", ROLE)
    by_account = {t["account"]: t for t in doc["targets"]}
    assert member in by_account and [s["name"] for s in by_account[member]["secrets"]] == [name]
    assert api_calls.counts["organizations.ListAccounts"] >= 1
    assert api_calls.counts.get("secretsmanager.GetSecretValue", 0) == 0
