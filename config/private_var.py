"""var/ is its owner's alone: the directory 0700, the SQLite database and its -wal and
-shm files 0600.

The database holds sessions, API tokens and password hashes; created under the usual
umask (022) it was readable by every user of the machine. SQLite gives the -wal and
-shm files the mode of the database file, so the database file is created 0600 before
SQLite first opens it; files an older Cutline left readable are narrowed too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _narrow(path: Path, mode: int) -> None:
    # Only what this user owns can be narrowed; another's file is its owner's to fix.
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


def keep_private(var_dir: Path, sqlite_paths: Iterable[Path]) -> None:
    var_dir.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    _narrow(var_dir, DIRECTORY_MODE)
    for database in sqlite_paths:
        database.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            # An empty file is an empty SQLite database; O_EXCL: never one that exists.
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        for suffix in SQLITE_COMPANIONS:
            _narrow(database.with_name(database.name + suffix), FILE_MODE)
