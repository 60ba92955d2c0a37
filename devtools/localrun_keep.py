"""``--keep``: serve the emulated AWS over HTTP and wait for Ctrl-C.

moto's ``ThreadedMotoServer`` runs in this process and serves the same in-memory state the
run used, so the secrets, parameters and the rotation function are all there; a RotateSecret
sent to it (with or without ``RotationLambdaARN``) runs our real handler in this process and answers
as AWS does: a failed step leaves AWSPENDING behind and its error is in the function's CloudWatch
Logs log group (``/aws/lambda/rotation-fn``). Needs ``flask`` and ``flask-cors``.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from typing import Any

from devtools.localrun_ssm import SOURCE, replication_env
from devtools.localrun_ui import Console


class KeepUnavailable(RuntimeError):
    pass


def start_server(port: int) -> tuple[Any, str]:
    try:
        import flask  # noqa: F401
        import flask_cors  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise KeepUnavailable(
            f"--keep needs moto's HTTP server ({exc.name} is not installed): "
            "run scripts/setup.sh (requirements-dev.txt pins flask and flask-cors)"
        ) from None
    if port:
        # moto's server thread would wait forever for a port it cannot bind: check first.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise KeepUnavailable(f"port {port} is in use: pass --port N (or --port 0 for any)") from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from devtools.aws import serving_http

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    serving_http()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def instructions(console: Console, endpoint: str, dbs: list[Any], ca_cert: str, handler_log: str) -> None:
    env = (
        f"export AWS_ENDPOINT_URL={endpoint} AWS_REGION={SOURCE} AWS_DEFAULT_REGION={SOURCE} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
    )
    repl = " ".join(
        f"{k}='{v}'" for k, v in replication_env().items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    lines = [
        f"Emulated AWS (Secrets Manager, SSM, Lambda; regions {SOURCE}, eu-central-1, us-east-1): {endpoint}",
        "",
        "  # in another shell",
        f"  {env}",
        "  aws secretsmanager list-secrets --query 'SecretList[].Name'",
        "  aws secretsmanager rotate-secret --secret-id demo/pg-alternating    # runs our handler here",
        "  aws secretsmanager describe-secret --secret-id demo/pg-alternating --query VersionIdsToStages",
        "  aws ssm get-parameters-by-path --path /app --recursive --region eu-central-1",
        "",
        "  # or with the operator CLI (after the export above; values stay masked)",
        "  .venv/bin/secretsctl secret ls",
        "  .venv/bin/secretsctl --yes rotate demo/pg-alternating --wait",
        "  .venv/bin/secretsctl secret diff demo/pg-alternating     # exit 3: the versions differ",
        "",
        "  # or with boto3",
        '  .venv/bin/python -c \'import boto3; sm = boto3.client("secretsmanager", '
        f'endpoint_url="{endpoint}", region_name="{SOURCE}"); '
        'print(sm.describe_secret(SecretId="demo/mysql-single")["VersionIdsToStages"])\'',
        "",
        "  # call the replication handlers yourself (after the export above)",
        f"  {repl} \\",
        "    .venv/bin/python -c 'from rotation_handlers.replicate import reconcile_handler as h; "
        'print(h({"dryRun": True}))\'',
        "",
        "Databases (TLS only; passwords are in the secrets: aws secretsmanager get-secret-value ...):",
    ]
    for db in dbs:
        server = db.server
        if db.is_pg:
            lines.append(
                f'  {db.label}: psql "host=127.0.0.1 port={server.port} dbname=appdb '
                f'user={server.admin_user} sslmode=verify-full sslrootcert={ca_cert}"'
                f"   (secret demo/{db.key}-master)"
            )
        else:
            lines.append(
                f"  {db.label}: mariadb -h 127.0.0.1 -P {server.port} -u {server.admin_user} -p "
                f"--ssl-ca={ca_cert} appdb   (secret demo/{db.key}-master)"
            )
    lines += ["", f"Handler logs (JSON): tail -f {handler_log}", "", "Press Ctrl-C to stop everything."]
    for line in lines:
        console.print(line)


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM."""
    done = threading.Event()

    def stop(*_: Any) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
