"""What guards the site as a whole, whichever way it is reached: every page's content
security policy forbids inline script, and var/ (the database with it) is the owner's alone.
"""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from config.private_var import keep_private

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/api/docs/", "/admin/login/"])
def test_every_page_forbids_inline_script(path: str) -> None:
    response = Client().get(path, follow=True)
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    # No page of ours carries an inline script for the policy to block (json_script is data).
    html = response.content.decode()
    inline = [m for m in re.findall(r"<script([^>]*)>", html) if "src=" not in m and "application/json" not in m]
    assert not inline, (path, inline)


def test_var_and_the_database_are_the_owners_alone(tmp_path: Path) -> None:
    var = tmp_path / "var"
    database = var / "cutline.sqlite3"
    keep_private(var, [database])
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    # SQLite gives its -wal and -shm files the database's mode.
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in var.iterdir()}
    assert modes["cutline.sqlite3-wal"] == modes["cutline.sqlite3-shm"] == 0o600, modes


def test_files_an_older_version_left_readable_are_narrowed(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    files = [var / name for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm")]
    for path in files:
        path.write_bytes(b"")
        path.chmod(0o644)
    keep_private(var, [files[0]])
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert [stat.S_IMODE(p.stat().st_mode) for p in files] == [0o600] * 3


def test_the_settings_made_this_sessions_var_private() -> None:
    assert stat.S_IMODE(Path(settings.VAR_DIR).stat().st_mode) == 0o700
