"""Shell completion of secret and parameter names against the emulated AWS (bash protocol)."""

from __future__ import annotations

from click.testing import CliRunner

from secretsctl.cli import cli


def complete(run, *words: str) -> list[str]:
    line = ["secretsctl", "--endpoint-url", run.emulated.endpoint, "--region", "us-east-1", *words]
    env = {
        "_SECRETSCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": " ".join(line),
        "COMP_CWORD": str(len(line) - 1),
    }
    result = CliRunner().invoke(cli, [], env=env, prog_name="secretsctl")
    return [item.split(",", 1)[1] for item in result.stdout.splitlines()]


def test_secret_and_parameter_names_complete(run, api_calls) -> None:
    prefix = run.name("comp")
    for suffix in ("alpha", "beta"):
        run.sm.create_secret(Name=f"{prefix}/{suffix}", SecretString=f"token-{suffix}-completion")
    run.sm.create_secret(Name=f"{prefix}x/other", SecretString="token-other-completion")
    assert complete(run, "secret", "get", f"{prefix}/") == [f"{prefix}/alpha", f"{prefix}/beta"]
    assert complete(run, "rotation", "enable", f"{prefix}/b") == [f"{prefix}/beta"]
    ssm = run.emulated.client("ssm")
    ssm.put_parameter(Name=f"/{prefix}/one", Value="completion-param-1", Type="String")
    assert complete(run, "param", "get", f"/{prefix}/") == [f"/{prefix}/one"]
    assert api_calls.counts.get("secretsmanager.GetSecretValue", 0) == 0
