"""Alternate user names exactly at the engine's limit rotate (one more is refused: test_alternating.py).

MySQL 32 characters, MariaDB 80 characters, PostgreSQL 63 bytes. There is no MySQL server here:
the ``mysql`` engine (and its 32-character limit) rotates against the MariaDB server, which
speaks the same protocol and accepts the name.
"""

from __future__ import annotations

import pytest

from rotation_handlers.engines.users import alternate_name

from .conftest import Db, Harness, maria_db, pg_db, unique_user
from .test_alternating import assert_same_privileges, make_app


@pytest.mark.parametrize(
    ("engine", "limit"),
    [("postgres", 63), ("mariadb", 80), ("mysql", 32)],
)
def test_alternate_name_exactly_at_the_limit_rotates(
    harness: Harness, request: pytest.FixtureRequest, engine: str, limit: int
) -> None:
    db: Db = (
        pg_db(request.getfixturevalue("pg_default"))
        if engine == "postgres"
        else maria_db(request.getfixturevalue("maria_server"))
    )
    base = unique_user("n") + "_"
    user = base + "x" * (limit - len("_clone") - len(base))
    clone = alternate_name(user)
    assert len(clone.encode()) == limit
    arn, _, _ = make_app(harness, db, user=user, engine=engine)

    harness.rotate(arn)
    assert harness.value(arn)["username"] == clone
    assert db.login(clone, harness.value(arn)["password"])
    assert_same_privileges(db, user)
    harness.rotate(arn)  # and back from the name at the limit
    assert harness.value(arn)["username"] == user
    assert db.login(user, harness.value(arn)["password"])
