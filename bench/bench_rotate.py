"""Rotation benchmark: API calls, DB connections, failed logins and wall time per rotation.

Runs real rotations through RotateSecret (moto, with Secrets Manager's invocation of the
rotation function routed to our handler) against throwaway PostgreSQL and MariaDB servers.
Connections and failed logins are counted by the servers themselves.

    .venv/bin/python bench/bench_rotate.py                 # 20 rotations per engine and strategy
    .venv/bin/python bench/bench_rotate.py --latency 0.03  # +30 ms per AWS call (a real region)
    .venv/bin/python bench/bench_rotate.py --fleet 200 --concurrency 10 --throttle 0.1 --latency 0.03

``--fleet N`` rotates N secrets (MariaDB and PostgreSQL, single and alternating users, in turn)
through RotateSecret, C at a time, while a share of the rotation function's Secrets Manager
requests is answered with ThrottlingException. A rotation whose step still fails after the
client's retries is resumed from that step, as a later attempt would (every step is safe to
run again). Every run also prints the import time of ``rotation_handlers.rotate``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from devtools.aws import (
    ApiCounter,
    LocalAws,
    StepFailed,
    error_response,
    local_aws,
    secret_versions,
    wrap_requests,
)
from devtools.dbservers import MariaDBServer, PostgresServer, TLSFiles, make_base_dir
from rotation_handlers import secrets_manager


def make_user(server: Any, name: str, password: str) -> None:
    if isinstance(server, PostgresServer):
        conn = server.connect_super()
        with conn.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {name}")
            cur.execute(f"CREATE ROLE {name} LOGIN PASSWORD %s", (password,))
            cur.execute(f"GRANT CONNECT ON DATABASE postgres TO {name}")
            cur.execute(f"GRANT ALL ON SCHEMA public TO {name}")
        conn.close()
    else:
        server.sql(f"DROP USER IF EXISTS '{name}'@'%'")
        conn = server.connect_super()
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT SELECT ON mysql.* TO '{name}'@'%'")
        conn.close()


def run(server: Any, strategy: str, rotations: int, latency: float, cold: bool) -> dict[str, Any]:
    with local_aws() as aws:
        aws.cold_containers = cold  # every step in a new Lambda container: nothing cached between steps
        sm = aws.client("secretsmanager")
        counter = ApiCounter(latency=latency).attach(secrets_manager.client(aws.region))
        user = f"bench_{strategy}_{server.family}"
        password = "Bench-" + os.urandom(12).hex()
        make_user(server, user, password)
        extra: dict[str, Any] = {}
        if strategy == "alternating":
            master = sm.create_secret(
                Name=f"master-{server.family}",
                SecretString=json.dumps(server.secret(server.admin_user, server.admin_password)),
            )["ARN"]
            extra["masterarn"] = master
        arn = sm.create_secret(
            Name=f"bench-{strategy}-{server.family}",
            SecretString=json.dumps(server.secret(user, password, **extra)),
        )["ARN"]
        rotate = {
            "SecretId": arn,
            "RotationLambdaARN": aws.function_arn,
            "RotationRules": {"AutomaticallyAfterDays": 30},
        }
        sm.rotate_secret(**rotate)  # warm-up: clients, imports, the clone user
        calls: Counter[str] = Counter()
        walls: list[float] = []
        stats_before = server.stats()
        for _ in range(rotations):
            secrets_manager.VERSION_CACHE.clear()  # rotations are weeks apart: nothing cached
            counter.calls.clear()
            started = time.perf_counter()
            sm.rotate_secret(**rotate)
            walls.append(time.perf_counter() - started)
            calls.update(counter.calls)
        stats_after = server.stats()
    return {
        "engine": server.family,
        "strategy": strategy,
        "calls": {k: v / rotations for k, v in sorted(calls.items())},
        "api_calls": sum(calls.values()) / rotations,
        "connections": (stats_after["connections"] - stats_before["connections"]) / rotations,
        "failed_logins": (stats_after["failed_logins"] - stats_before["failed_logins"]) / rotations,
        "wall_ms_median": statistics.median(walls) * 1000,
    }


def import_time_ms(runs: int = 7) -> float:
    """Median cumulative import time of rotation_handlers.rotate (``python -X importtime``), in ms."""
    samples = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import rotation_handlers.rotate"],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.join(os.path.dirname(__file__), ".."),
        )
        match = re.search(r"\|\s*(\d+) \| rotation_handlers\.rotate$", result.stderr, re.MULTILINE)
        if match:
            samples.append(int(match.group(1)) / 1000)
    return statistics.median(samples)


class Throttler:
    """Answers a share of a client's requests (every attempt, retries included) with ThrottlingException."""

    def __init__(self, share: float, seed: int = 7) -> None:
        self.share = share
        self.enabled = False
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.attempts = 0
        self.throttled = 0

    def attach(self, client: Any) -> Throttler:
        # A throttled request never reaches moto (as on AWS: it is not executed).
        wrap_requests(client, self._send)
        return self

    def _send(self, request: Any, answer: Callable[[], Any]) -> Any:
        with self.lock:
            throttle = self.enabled and self.random.random() < self.share
            self.attempts += self.enabled
            self.throttled += throttle
        if throttle:
            return error_response(request, 400, "ThrottlingException", "Rate exceeded")
        return answer()


STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def rotate_to_the_end(aws: LocalAws, sm: Any, arn: str, attempts: int = 3) -> int:
    """RotateSecret; if a step fails, run it again and the rest (as the next attempt would). Resumes."""
    try:
        sm.rotate_secret(
            SecretId=arn, RotationLambdaARN=aws.function_arn, RotationRules={"AutomaticallyAfterDays": 30}
        )
        return 0
    except StepFailed as failure:
        step = failure.step
    token = next((v for v, stages in secret_versions(sm, arn).items() if "AWSPENDING" in stages), None)
    if token is None:
        raise RuntimeError(f"rotation of {arn} failed at {step} and left no AWSPENDING version to resume")
    assert aws.handler is not None
    for resume in range(1, attempts + 1):
        try:
            for name in STEPS[STEPS.index(step) :]:
                step = name
                aws.handler({"SecretId": arn, "ClientRequestToken": token, "Step": name}, None)
            return resume
        except Exception:
            continue  # the next attempt starts again at the failed step
    raise RuntimeError(f"rotation of {arn} still fails at {step} after {attempts} resumes")


def logs_in(server: Any, user: str, password: str) -> bool:
    try:
        if isinstance(server, PostgresServer):
            import psycopg2

            conn = psycopg2.connect(
                host=server.host,
                port=server.port,
                user=user,
                password=password,
                dbname="postgres",
                sslmode="require",
            )
        else:
            import pymysql

            conn = pymysql.connect(
                host=server.host,
                port=server.port,
                user=user,
                password=password,
                ssl={"ca": str(server.tls.ca_cert)},
            )
    except Exception:
        return False
    conn.close()
    return True


def fleet(
    servers: list[Any], n: int, concurrency: int, throttle: float, latency: float, baseline: int = 3
) -> dict[str, Any]:
    kinds = [(server, strategy) for server in servers for strategy in ("single", "alternating")]
    with local_aws() as aws:
        setup = aws.client("secretsmanager")
        fn_client = secrets_manager.client(aws.region)
        counter = ApiCounter(latency=latency).attach(fn_client)
        throttler = Throttler(throttle).attach(fn_client)
        masters = {
            server.family: setup.create_secret(
                Name=f"fleet-master-{server.family}",
                SecretString=json.dumps(server.secret(server.admin_user, server.admin_password)),
            )["ARN"]
            for server in servers
        }
        secrets: list[tuple[str, Any, str]] = []  # (arn, server, first AWSCURRENT version)
        for i in range(n + baseline * len(kinds)):
            server, strategy = kinds[i % len(kinds)]
            user, password = f"fleet_{i:04d}", "Fleet-" + os.urandom(12).hex()
            make_user(server, user, password)
            extra = {"masterarn": masters[server.family]} if strategy == "alternating" else {}
            created = setup.create_secret(
                Name=f"fleet-{i:04d}", SecretString=json.dumps(server.secret(user, password, **extra))
            )
            secrets.append((created["ARN"], server, created["VersionId"]))
        warm, secrets = secrets[: baseline * len(kinds)], secrets[baseline * len(kinds) :]

        # One rotation at a time, no throttling: the single-rotation time the fleet is compared with.
        singles = []
        for arn, _, _ in warm:
            started = time.perf_counter()
            rotate_to_the_end(aws, setup, arn)
            singles.append(time.perf_counter() - started)
        single = statistics.median(singles)

        local = threading.local()
        client_lock = threading.Lock()

        def one(arn: str) -> int:
            if not hasattr(local, "sm"):
                with client_lock:  # creating boto3 clients is not thread-safe
                    local.sm = aws.client("secretsmanager")
            return rotate_to_the_end(aws, local.sm, arn)

        counter.calls.clear()
        before = [server.stats() for server in servers]
        throttler.enabled = True
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(one, [arn for arn, _, _ in secrets], timeout=3600))
        wall = time.perf_counter() - started
        throttler.enabled = False
        after = [server.stats() for server in servers]

        stuck = completed = logging_in = 0
        for arn, server, first in secrets:
            versions = secret_versions(setup, arn)
            stuck += any("AWSPENDING" in st and "AWSCURRENT" not in st for st in versions.values())
            completed += "AWSCURRENT" not in versions.get(first, [])
            value = json.loads(setup.get_secret_value(SecretId=arn)["SecretString"])
            logging_in += logs_in(server, value["username"], value["password"])
    calls = sum(counter.calls.values())
    return {
        "rotations": n,
        "concurrency": concurrency,
        "throttle_share": throttle,
        "latency_ms": latency * 1000,
        "completed": completed,
        "awscurrent_logs_in": logging_in,
        "stuck_pending": stuck,
        "resumed_rotations": sum(1 for r in results if r),
        "failed_logins": sum(
            a["failed_logins"] - b["failed_logins"] for a, b in zip(after, before, strict=True)
        ),
        "db_connections_per_rotation": sum(
            a["connections"] - b["connections"] for a, b in zip(after, before, strict=True)
        )
        / n,
        "sm_calls_per_rotation": calls / n,
        "sm_attempts_per_rotation": throttler.attempts / n,
        "sm_retries_per_rotation": (throttler.attempts - calls) / n,
        "throttled_per_rotation": throttler.throttled / n,
        "single_rotation_ms": single * 1000,
        "wall_s": wall,
        "ideal_wall_s": n * single / concurrency,
    }


def print_fleet(r: dict[str, Any]) -> None:
    print(
        f"fleet: {r['rotations']} secrets (MariaDB/PostgreSQL x single/alternating), "
        f"{r['concurrency']} at a time, {r['throttle_share']:.0%} of requests throttled, "
        f"+{r['latency_ms']:.0f} ms per AWS call\n"
    )
    print("| figure | value |\n|---|---|")
    rows = [
        ("completed rotations", f"{r['completed']} / {r['rotations']}"),
        ("AWSCURRENT logs in afterwards", f"{r['awscurrent_logs_in']} / {r['rotations']}"),
        ("stuck AWSPENDING", r["stuck_pending"]),
        ("rotations resumed after a step failed", r["resumed_rotations"]),
        ("failed logins (server counters)", r["failed_logins"]),
        ("DB connections per rotation", f"{r['db_connections_per_rotation']:.2f}"),
        ("Secrets Manager calls per rotation", f"{r['sm_calls_per_rotation']:.2f}"),
        ("requests per rotation (retries included)", f"{r['sm_attempts_per_rotation']:.2f}"),
        ("retries per rotation", f"{r['sm_retries_per_rotation']:.2f}"),
        ("throttled requests per rotation", f"{r['throttled_per_rotation']:.2f}"),
        ("single rotation (median, alone, no throttling)", f"{r['single_rotation_ms']:.0f} ms"),
        ("wall time", f"{r['wall_s']:.1f} s"),
        ("N x single / C", f"{r['ideal_wall_s']:.1f} s ({r['wall_s'] / r['ideal_wall_s']:.2f}x)"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each AWS call")
    parser.add_argument("--cold", action="store_true", help="run every step as in a new Lambda container")
    parser.add_argument("--strategies", default="single,alternating")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--fleet", type=int, default=0, help="rotate this many secrets concurrently (e.g. 200)"
    )
    parser.add_argument("--concurrency", type=int, default=10, help="fleet: rotations at a time")
    parser.add_argument("--throttle", type=float, default=0.1, help="fleet: share of requests throttled")
    args = parser.parse_args()

    imports = import_time_ms()
    # One JSON line per step and secret would drown the figures: warnings and errors only
    # (the function's own log level setting, read when its logger is first configured).
    os.environ.setdefault("AWS_LAMBDA_LOG_LEVEL", "WARNING")
    base = make_base_dir("rotation-bench-")
    tls = TLSFiles.create(base / "tls")
    results = []
    with PostgresServer(tls) as pg, MariaDBServer(tls) as maria:
        if args.fleet:
            result = fleet([maria, pg], args.fleet, args.concurrency, args.throttle, args.latency)
            result["import_ms"] = imports
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                print_fleet(result)
                print(
                    f"\nimport rotation_handlers.rotate: {imports:.0f} ms (median of 7, python -X importtime)"
                )
            return
        for server in (maria, pg):
            for strategy in args.strategies.split(","):
                try:
                    results.append(run(server, strategy, args.rotations, args.latency, args.cold))
                except Exception as exc:  # e.g. a strategy not available in this checkout
                    print(f"{server.family}/{strategy}: failed: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps({"import_ms": imports, "rotations": results}, indent=2))
        return
    mode = "cold: a new container per step" if args.cold else "warm: the steps share a container"
    print(f"{args.rotations} rotations per row, +{args.latency * 1000:.0f} ms per AWS call, {mode}\n")
    print(
        "| engine | strategy | Secrets Manager calls | by operation | DB connections | failed logins "
        "| wall time (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ops = ", ".join(f"{k} {v:g}" for k, v in r["calls"].items())
        print(
            f"| {r['engine']} | {r['strategy']} | {r['api_calls']:g} | {ops} | {r['connections']:g} "
            f"| {r['failed_logins']:g} | {r['wall_ms_median']:.0f} ms |"
        )
    print(f"\nimport rotation_handlers.rotate: {imports:.0f} ms (median of 7, python -X importtime)")


if __name__ == "__main__":
    main()
