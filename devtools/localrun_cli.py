"""The operator CLI at work in the local run: ``secretsctl`` against the emulated AWS of the run.

The real click group runs in this process, so its AWS calls reach the same emulated AWS (moto) the
rotations used; its output is captured and shown like any other table of the run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    stdout: str
    stderr: str


def secretsctl(args: Sequence[str]) -> CliRun:
    """``secretsctl ARGS...`` as a user types it; its exit code and what it printed."""
    from secretsctl.cli import cli

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.main(args=list(args), prog_name="secretsctl", standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.Abort:
            code = 1
    return CliRun(code if isinstance(code, int) else 0, out.getvalue(), err.getvalue())


def status_problems(names: Sequence[str]) -> list[str]:
    """What ``secretsctl -o json status NAMES`` reports wrong after the demo's rotations, if anything."""
    run = secretsctl(["-o", "json", "status", *names])
    if run.exit_code != 0:
        return [f"secretsctl status exited {run.exit_code}: {run.stderr.strip()}"]
    document: dict[str, Any] = json.loads(run.stdout)
    problems = []
    listed = {s["name"]: s for s in document.get("secrets", [])}
    for name in names:
        entry = listed.get(name)
        if entry is None:
            problems.append(f"secretsctl status does not list {name}")
        elif not entry["rotationEnabled"] or entry["lastRotated"] is None or entry["findings"]:
            kinds = ", ".join(f["kind"] for f in entry["findings"]) or "no finding"
            problems.append(
                f"secretsctl status: {name} rotation {'on' if entry['rotationEnabled'] else 'off'}, "
                f"last rotated {entry['lastRotated']}, {kinds}"
            )
    return problems
