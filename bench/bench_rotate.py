"""Rotation benchmark: API calls, DB connections, failed logins and wall time per rotation.

Runs real rotations through RotateSecret (moto, with Secrets Manager's invocation of the
rotation function routed to our handler) against throwaway PostgreSQL and MariaDB servers.
Connections and failed logins are counted by the servers themselves.

    .venv/bin/python bench/bench_rotate.py                 # 20 rotations per engine and strategy
    .venv/bin/python bench/bench_rotate.py --latency 0.03  # +30 ms per AWS call (a real region)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from devtools.aws import ApiCounter, local_aws
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each AWS call")
    parser.add_argument("--cold", action="store_true", help="run every step as in a new Lambda container")
    parser.add_argument("--strategies", default="single,alternating")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    base = make_base_dir("rotation-bench-")
    tls = TLSFiles.create(base / "tls")
    results = []
    with PostgresServer(tls) as pg, MariaDBServer(tls) as maria:
        for server in (maria, pg):
            for strategy in args.strategies.split(","):
                try:
                    results.append(run(server, strategy, args.rotations, args.latency, args.cold))
                except Exception as exc:  # e.g. a strategy not available in this checkout
                    print(f"{server.family}/{strategy}: failed: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
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


if __name__ == "__main__":
    main()
