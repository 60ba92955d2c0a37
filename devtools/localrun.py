"""The whole service on one machine, no AWS account: ``./scripts/demo.sh`` (``python -m devtools.localrun``).

1. throwaway PostgreSQL and MariaDB servers (TLS, loopback) and an emulated AWS (moto) in three regions
2. ``cdk synth`` of the example configuration (in the background while the servers start)
3. four example database secrets with real users behind them (single and alternating user, both engines)
4. each rotated N times through RotateSecret; moto invokes our real rotation handler
5. a table after each rotation round: labels, users, logins, step timings, API calls, DB connections,
   then ``secretsctl status`` of the four secrets: the operator CLI against the same emulated AWS
6. Parameter Store changes replicated to two regions by our handler, then a reconcile dry run
7. everything stopped (``--keep``: served over HTTP until Ctrl-C first)

``--check`` verifies every rotation and replica and scans all output for passwords; exit 1 on any
mismatch. Any error exits 1 with a message naming the stage.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

from devtools.localrun_db import DemoDb
from devtools.localrun_ui import Console

REPO = Path(__file__).resolve().parent.parent


class LocalRun:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.stack = ExitStack()
        self.mismatches: list[str] = []  # what --check found wrong
        self.passwords: set[str] = set()
        self.dbs: list[DemoDb] = []
        self.synth: Any = None  # devtools.localrun_synth.Synth when synthesizing
        self.sm: Any = None  # Secrets Manager client (emulated)
        self.ca_cert = ""  # the throwaway CA that signed both servers' certificates
        self.run_dir: Path | None = None
        self.handler_log: Path | None = None
        self.current_stage = "start"
        self.checks = 0
        #: EMF metric name -> [data points, sum of values] over every line the handlers printed.
        self.metrics_seen: dict[str, list[float]] = {}

    # -- helpers ---------------------------------------------------------------------------------
    def stage(self, title: str) -> None:
        self.current_stage = title
        self.console.stage(title)

    def expect(self, ok: bool, problem: str) -> None:
        self.checks += 1
        if not ok:
            self.mismatches.append(problem)

    # -- stages ----------------------------------------------------------------------------------
    def run(self) -> None:
        from devtools.dbservers import make_base_dir

        self.run_dir = make_base_dir("localrun-")
        self._capture_handler_logs(self.run_dir / "handlers.log")
        self.stage("Start databases (TLS, loopback) and emulated AWS")
        self._start_synth()
        aws = self._start_services()
        self.stage("Synthesize the CDK app (config/example.json)")
        self._wait_synth()
        self.stage("Create example secrets with real database users")
        secrets = self._create_secrets(aws)
        self.stage(f"Rotate each secret {self.args.rotations} times through RotateSecret")
        self._rotate_all(aws, secrets)
        self.stage("The operator CLI against the emulated AWS: secretsctl status")
        self._cli_status(secrets)
        self.stage("Parameter Store changes in eu-west-1, replicated by the handler")
        self._replicate(aws)
        self._metrics_summary()
        if self.args.check:
            self._leak_scan()
        if self.args.keep:
            self._keep()

    def _capture_handler_logs(self, path: Path) -> None:
        """The handlers log JSON to stdout (as on Lambda); here it goes to a file instead."""
        from rotation_handlers import logs

        logs.get_logger("localrun")
        root = logging.getLogger("rotation_handlers")
        removed = list(root.handlers)
        for handler in removed:
            root.removeHandler(handler)
        file_handler = logging.FileHandler(path)
        file_handler.setFormatter(logs.JsonFormatter())
        root.addHandler(file_handler)
        self.handler_log = path
        from rotation_handlers import metrics

        previous_sink = metrics.SINK
        metrics.SINK = self._metric_line

        def restore() -> None:
            metrics.SINK = previous_sink
            root.removeHandler(file_handler)
            file_handler.close()
            for handler in removed:
                root.addHandler(handler)

        self.stack.callback(restore)

    def _metric_line(self, line: str) -> None:
        """An EMF line from a handler: into the handler log (as on Lambda) and the counts."""
        import json

        if self.handler_log is not None:
            with self.handler_log.open("a") as log:
                log.write(line + "\n")
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for m in directive["Metrics"]:
                value = doc[m["Name"]]
                points = value if isinstance(value, list) else [value]
                seen = self.metrics_seen.setdefault(m["Name"], [0, 0.0])
                seen[0] += len(points)
                seen[1] += sum(points)

    def _metrics_summary(self) -> None:
        """What CloudWatch would have received from the functions' EMF lines (docs/metrics.md)."""
        from rotation_handlers import metrics

        self.stage("Metrics the functions printed (CloudWatch Embedded Metric Format)")
        rows = []
        for name, (points, total) in sorted(self.metrics_seen.items()):
            unit = metrics.METRICS[name]
            shown = f"{total:.0f}" if unit == "Count" else f"avg {total / points:.1f}"
            rows.append([name, unit, str(int(points)), shown])
        self.console.table(["metric", "unit", "data points", "sum / average"], rows)
        self.expect(
            metrics.ROTATIONS in self.metrics_seen and metrics.WRITES_WRITTEN in self.metrics_seen,
            "the handlers printed no rotation or replication metrics",
        )
        failed_logins = self.metrics_seen.get(metrics.FAILED_LOGINS, [0, 0.0])[1]
        self.expect(failed_logins == 0, f"{failed_logins:.0f} failed login(s) in the metrics")

    def _start_synth(self) -> None:
        from devtools.localrun_synth import Synth

        if self.args.skip_synth or not Synth.present():
            return
        self.synth = Synth(Path(self.args.cdk_out).resolve())
        self.synth.start()
        self.stack.callback(self.synth.stop)

    def _start_services(self) -> Any:
        from devtools.aws import local_aws
        from devtools.dbservers import MariaDBServer, PostgresServer, TLSFiles
        from devtools.localrun_ssm import SOURCE, TARGETS

        assert self.run_dir is not None
        with self.console.spinner("starting PostgreSQL and MariaDB") as spin:
            tls = TLSFiles.create(self.run_dir / "tls")
            pg, maria = PostgresServer(tls), MariaDBServer(tls)
            self.stack.callback(maria.stop)
            self.stack.callback(pg.stop)
            with ThreadPoolExecutor(2) as pool:
                for future in [pool.submit(pg.start), pool.submit(maria.start)]:
                    future.result()
            spin.done = f"PostgreSQL on 127.0.0.1:{pg.port}, MariaDB on 127.0.0.1:{maria.port} (TLS only)"
        self.dbs = [
            DemoDb("PostgreSQL", "pg", "postgres", pg),
            DemoDb("MariaDB", "mysql", "mariadb", maria),
        ]
        self.ca_cert = str(tls.ca_cert)
        aws = self.stack.enter_context(local_aws(SOURCE))
        env = {"AWS_REGION": SOURCE, "AWS_DEFAULT_REGION": SOURCE, "DB_CA_BUNDLE": str(tls.ca_cert)}
        self.stack.enter_context(mock.patch.dict(os.environ, env))
        # A real endpoint or profile would bypass moto (the patch above restores them at exit).
        for var in [v for v in os.environ if v.startswith("AWS_ENDPOINT_URL") or v == "AWS_PROFILE"]:
            del os.environ[var]
        self.console.ok(
            f"emulated AWS (moto): Secrets Manager, SSM, Lambda in {SOURCE} (source), {', '.join(TARGETS)}"
        )
        self.console.note(f"rotation function {aws.function_arn}: invocations run our real handler")
        self.console.note(f"handler logs (JSON) go to {self.handler_log}")
        return aws

    def _wait_synth(self) -> None:
        if self.synth is None:
            why = "--skip-synth" if self.args.skip_synth else "CDK app not present (app.py, cdk.json, infra/)"
            self.console.note(f"skipped: {why}")
            return
        with self.console.spinner("cdk synth") as spin:
            result = self.synth.wait()
            spin.done = f"synthesized {len(result.templates)} stack(s) into {result.outdir}"
        for name, resources in result.templates:
            self.console.note(f"{result.outdir / name}  ({resources} resources)")

    def _create_secrets(self, aws: Any) -> list[Any]:
        from devtools.localrun_rotation import create_secrets

        self.sm = aws.client("secretsmanager")
        with self.console.spinner("creating application tables, users and secrets") as spin:
            secrets = create_secrets(self.sm, self.dbs, self.passwords)
            spin.done = f"{len(secrets)} secrets, 2 master secrets, table appdb.orders in each database"
        rows = []
        for s in secrets:
            master = f"masterarn -> demo/{s.db.key}-master (admin)" if s.strategy == "alternating" else ""
            rows.append([s.name, s.db.engine, f"{s.strategy}-user", s.base_user, master])
        self.console.table(["secret", "engine", "rotation", "db user", "master secret"], rows)
        return secrets

    def _rotate_all(self, aws: Any, secrets: list[Any]) -> None:
        from devtools.aws import ApiCounter
        from devtools.localrun_rotation import alternating_available, rotate
        from devtools.localrun_ssm import SOURCE
        from rotation_handlers import secrets_manager

        counter = ApiCounter().attach(secrets_manager.client(SOURCE))
        if not alternating_available():
            self.console.bad(
                "alternating-user strategy not present (rotation_handlers/strategies/alternating_user.py): "
                "skipping the alternating-user secrets"
            )
            self.expect(False, "alternating-user strategy not present: alternating secrets not rotated")
            secrets = [s for s in secrets if s.strategy != "alternating"]
        self.console.note(
            "per label: version id, the database user it names, whether its credentials log in "
            "(and read appdb.orders)"
        )
        for round_no in range(1, self.args.rotations + 1):
            results = []
            with self.console.spinner(f"rotation {round_no}/{self.args.rotations}") as spin:
                for i, secret in enumerate(secrets, 1):
                    spin.update(
                        f"rotation {round_no}/{self.args.rotations}: {secret.name} ({i}/{len(secrets)})"
                    )
                    results.append(rotate(aws, self.sm, counter, secret, round_no, self.passwords))
                spin.done = f"rotation {round_no}/{self.args.rotations}: {len(secrets)} secrets"
            self._rotation_table(results)

    def _rotation_table(self, results: list[Any]) -> None:
        rows = []
        for r in results:
            cur, prev = r.current, r.previous
            steps = "/".join(
                f"{r.steps.get(s, 0) * 1000:.0f}"
                for s in ("createSecret", "setSecret", "testSecret", "finishSecret")
            )
            db = f"{r.db_connections}" + (f" ({r.failed_logins} failed)" if r.failed_logins else "")
            for problem in r.problems:
                self.mismatches.append(f"{r.secret.name} rotation {r.round}: {problem}")
            self.checks += 1
            rows.append(
                [
                    r.secret.name,
                    f"{cur.version[:8]} {cur.user:<9} {cur.login}",
                    f"{prev.version[:8]} {prev.user:<9} {prev.login}" if prev else "-",
                    ", ".join(r.other_labels) or "-",
                    steps,
                    str(r.sm_calls),
                    db,
                    self.console.mark(not r.problems),
                ]
            )
        self.console.table(
            ["secret", "AWSCURRENT", "AWSPREVIOUS", "other", "c/s/t/f ms", "SM calls", "DB conns", "check"],
            rows,
        )
        for r in results:
            for problem in r.problems:
                self.console.bad(f"{r.secret.name}: {problem}")

    def _cli_status(self, secrets: list[Any]) -> None:
        from devtools.localrun_cli import secretsctl, status_problems

        names = [s.name for s in secrets]
        run = secretsctl(["status", *names])
        self.console.print(f"  $ secretsctl status {' '.join(names)}")
        for line in run.stdout.rstrip("\n").splitlines():
            self.console.print(f"  {line}")
        problems = status_problems(names) if run.exit_code == 0 else [f"exit {run.exit_code}: {run.stderr}"]
        self.expect(not problems, "; ".join(problems))
        for problem in problems:
            self.console.bad(problem)

    def _replicate(self, aws: Any) -> None:
        import secrets as pysecrets

        from devtools.aws import ApiCounter
        from devtools.localrun_ssm import (
            SOURCE,
            TARGETS,
            all_names,
            apply_and_replicate,
            compare,
            names_of,
            reconcile_dry_run,
            scenario,
        )
        from rotation_handlers.replication import clients

        clients.reset()
        counter = ApiCounter()
        for region in (SOURCE, *TARGETS):
            counter.attach(clients.ssm(region))
        values = {
            "host": "orders-db.example.internal",
            "hosts": "10.0.1.10,10.0.1.11,10.0.1.12",
            "key": "key-" + pysecrets.token_urlsafe(16),
            "key2": "key-" + pysecrets.token_urlsafe(16),
            "flag": "off",
        }
        self.passwords.update({values["key"], values["key2"]})
        own = {r: aws.client("ssm", r) for r in (SOURCE, *TARGETS)}
        caller = aws.client("sts").get_caller_identity()
        rows = []
        names: set[str] = set()
        with self.console.spinner("Parameter Store changes") as spin:
            changes = scenario(values)
            for i, change in enumerate(changes, 1):
                spin.update(f"change {i}/{len(changes)}: {change.operation}")
                result = apply_and_replicate(own[SOURCE], change, caller["Account"], caller["Arn"], counter)
                names.update(names_of(change))
                rows.append(
                    [
                        str(i),
                        change.what,
                        change.operation,
                        ", ".join(names_of(change)),
                        *(result.actions.get(r, "-") for r in TARGETS),
                        str(result.ssm_calls),
                        f"{result.seconds * 1000:.0f}",
                    ]
                )
            spin.done = f"{len(changes)} changes, each replicated from its CloudTrail event"
        self.console.table(["#", "change", "event", "parameter", *TARGETS, "SSM calls", "ms"], rows)

        self.console.print()
        self.console.note(
            "each target region against the source: value, type, description, pattern, tier, data type, "
            "labels, tags (+ replica marker), KMS key"
        )
        for region in TARGETS:
            names |= all_names(own[region])
        comparisons = compare(own, names)
        rows = []
        for c in comparisons:
            for region, (ok, text) in c.verdicts.items():
                self.expect(ok, f"{c.name} in {region}: {text}")
            rows.append(
                [
                    c.name,
                    c.source,
                    *(c.verdicts[r][1] for r in TARGETS),
                    self.console.mark(all(ok for ok, _ in c.verdicts.values())),
                ]
            )
        self.console.table(["parameter", f"source ({SOURCE})", *TARGETS, "check"], rows)

        self.console.print()
        with self.console.spinner("reconcile dry run") as spin:
            summary = reconcile_dry_run()
            regions = summary.get("regions", {})
            per_region = "; ".join(
                f"{r}: " + ", ".join(f"{k} {n}" for k, n in counts.items()) for r, counts in regions.items()
            )
            pending = len(summary.get("changes") or [])
            spin.done = (
                f"reconcile dry run: {summary.get('parameters')} source parameters; {per_region}; "
                + ("nothing to do" if pending == 0 else f"{pending} change(s) planned")
            )
        only_unchanged = all(set(counts) <= {"unchanged"} for counts in regions.values())
        self.expect(
            pending == 0 and only_unchanged, f"reconcile dry run planned {pending} change(s): {per_region}"
        )
        self.expect(summary.get("dryRun") is True, "reconcile did not run as a dry run")

    def _leak_scan(self) -> None:
        from devtools.localrun_rotation import moto_secret_strings

        known = {p for p in self.passwords | set(moto_secret_strings()) if p and len(p) >= 6}
        texts = {"output": self.console.transcript.getvalue()}
        if self.handler_log is not None and self.handler_log.exists():
            texts["handler log"] = self.handler_log.read_text(errors="replace")
        for where, text in texts.items():
            leaked = sum(1 for p in known if p in text)
            self.expect(leaked == 0, f"{leaked} password(s) appear in the {where}")
        self.console.note(f"scanned output and handler logs for {len(known)} passwords/values: none found")

    def _keep(self) -> None:
        from devtools.localrun_keep import instructions, start_server, wait_for_interrupt

        self.stage("Keep running (--keep)")
        server, endpoint = start_server(self.args.port)
        self.stack.callback(server.stop)
        instructions(self.console, endpoint, self.dbs, self.ca_cert, str(self.handler_log))
        wait_for_interrupt()
        self.console.print()

    def stop(self, failed: bool) -> None:
        """Stop everything started, in reverse order; keep the run dir (logs) only after a failure."""
        self.current_stage = "stop"
        self.console.stage("Stop everything")
        started = time.perf_counter()
        self.stack.close()
        if self.run_dir is not None and not failed:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.console.ok(f"databases, emulated AWS and synth stopped ({time.perf_counter() - started:.1f} s)")
        if failed and self.run_dir is not None:
            self.console.note(f"logs kept in {self.run_dir}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/demo.sh",
        description="Run the secrets-rotation + SSM-replication service end to end on this machine "
        "(no AWS account): throwaway databases, emulated AWS, real handlers.",
    )
    parser.add_argument(
        "--check", action="store_true", help="verify every rotation and replica; exit 1 on any mismatch"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep databases and emulated AWS running until Ctrl-C"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=5000,
        help="port of the emulated AWS endpoint with --keep (default 5000; 0 = any)",
    )
    parser.add_argument("--rotations", type=int, default=3, help="rotations per secret (default 3)")
    parser.add_argument("--skip-synth", action="store_true", help="do not synthesize the CDK app")
    parser.add_argument(
        "--cdk-out",
        default=str(REPO / "cdk.out" / "localrun"),
        help="where the synthesized templates go (default cdk.out/localrun)",
    )
    parser.add_argument("--no-color", action="store_true", help="no ANSI colours")
    args = parser.parse_args(argv)
    if args.rotations < 1:
        parser.error("--rotations must be at least 1")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(color=False if args.no_color else None)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    run = LocalRun(args, console)
    failed: str | None = None
    try:
        run.run()
    except KeyboardInterrupt:
        failed = "interrupted"
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}"
    finally:
        stage = run.current_stage
        try:
            run.stop(failed is not None)
        except Exception as exc:  # a failure to stop is a failure too
            failed = failed or f"stopping failed: {exc}"
    elapsed = time.perf_counter() - started
    console.print()
    if failed:
        console.bad(f"local run FAILED in stage '{stage}': {failed}")
        return 1
    if run.mismatches:
        for problem in run.mismatches:
            console.bad(problem)
        if args.check:
            console.bad(f"--check: {len(run.mismatches)} mismatch(es) ({elapsed:.0f} s)")
            return 1
        console.note(f"{len(run.mismatches)} mismatch(es) (with --check this run would exit 1)")
        return 0
    what = f"--check: all {run.checks} checks passed" if args.check else "local run finished"
    console.ok(f"{what} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
