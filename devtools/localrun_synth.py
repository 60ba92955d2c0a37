"""Synthesize the CDK app with the example configuration (in the background, while servers start).

Runs ``app.py`` with the venv's Python, as the pinned CDK CLI would (``cdk.json``'s ``app``), with
``cdk.json``'s context plus ``config`` passed in ``CDK_CONTEXT_JSON`` and the output in ``CDK_OUTDIR``.
No AWS credentials, no Docker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = "config/example.json"


@dataclass
class SynthResult:
    outdir: Path
    templates: list[tuple[str, int]]  # (file name, resource count)


class Synth:
    """A running synth subprocess; :meth:`wait` returns the templates or raises with the log tail."""

    def __init__(self, outdir: Path, config: str = EXAMPLE_CONFIG) -> None:
        self.outdir = outdir
        self.config = config
        self.log = outdir.parent / (outdir.name + ".synth.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def present() -> bool:
        return (REPO / "app.py").is_file() and (REPO / "cdk.json").is_file() and (REPO / "infra").is_dir()

    def start(self) -> None:
        cdk_json = json.loads((REPO / "cdk.json").read_text())
        context = dict(cdk_json.get("context", {}))
        context["config"] = self.config
        shutil.rmtree(self.outdir, ignore_errors=True)
        self.outdir.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CDK_OUTDIR": str(self.outdir),
            "CDK_CONTEXT_JSON": json.dumps(context),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
        # The synth must not see the emulated AWS's fake credentials or endpoints.
        for var in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(var, None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait(self, timeout: float = 300) -> SynthResult:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"cdk synth took longer than {timeout:.0f} s (log: {self.log})") from None
        if rc != 0:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"cdk synth failed (exit {rc}); log {self.log}:\n    " + "\n    ".join(tail))
        templates = []
        for path in sorted(self.outdir.glob("*.template.json")):
            resources = json.loads(path.read_text()).get("Resources", {})
            templates.append((path.name, len(resources)))
        if not templates:
            raise RuntimeError(f"cdk synth wrote no templates to {self.outdir} (log: {self.log})")
        return SynthResult(self.outdir, templates)

    def stop(self) -> None:
        """End the synth and its children (its own process group: it was started in a new session)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
