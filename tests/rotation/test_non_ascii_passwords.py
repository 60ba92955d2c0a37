"""Person-set passwords with characters outside latin-1 ('€', 'ß', CJK) rotate on both engines.

pymysql encodes a ``str`` password as latin-1, so '€' could never log in and its error quoted
the character and its position; the engine sends the UTF-8 bytes instead (the encoding of the
utf8mb4 connection the password was set through).
"""

from __future__ import annotations

import pytest

from .conftest import Db, Harness, new_password, unique_user


@pytest.mark.parametrize("extra", ["€uro", "Straße-€", "密码"])
def test_non_latin1_password_rotates(harness: Harness, db: Db, extra: str) -> None:
    user, password = unique_user(), new_password() + extra
    db.make_user(user, password)
    harness.passwords.update({password, extra})
    arn = harness.create_secret(db.secret(user, password))
    before = db.server.stats()
    harness.rotate(arn)
    after = db.server.stats()
    assert after["failed_logins"] - before["failed_logins"] == 0
    assert db.login(user, harness.value(arn)["password"])
    assert not harness.errors
