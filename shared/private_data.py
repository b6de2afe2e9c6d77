"""Where root keeps the embedded PostgreSQL's data: `data/<random>/pgdata` under a root-owned
directory, named by a link in the home (`.leadflow/postgres`). Data whose link no longer points
to it is set aside in `abandoned/<random>`, not removed: a link that looks gone may only have
moved (`mv .leadflow` as a safety copy, a restore put in its place), and a start of that home
takes its data back. What is set aside is removed once RETENTION has passed."""

import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.part_logs import say

ROOT_STATE = Path("/var/lib/leadflow-embedded-postgres")
RETENTION = timedelta(days=7)
SET_ASIDE = "set_aside"  # in a set-aside directory: when (seconds since the epoch)


class DataMissing(RuntimeError):
    """The clone's data directory is gone: nothing is started, nothing made in its place."""


@dataclass(frozen=True)
class PrivateData:
    """The data directories under `root` (ROOT_STATE: every clone of this machine's root)."""

    root: Path = ROOT_STATE

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def abandoned(self) -> Path:
        return self.root / "abandoned"

    def prepare(self) -> None:
        """Its directories: the server's user passes through `data`; `abandoned` is root's alone."""
        for path, mode in ((self.root, 0o755), (self.data, 0o711), (self.abandoned, 0o700)):
            path.mkdir(mode=mode, exist_ok=True)
            path.chmod(mode)  # ours; the umask may have narrowed it

    def pgdata_of(self, link: Path, owner: pwd.struct_passwd) -> Path:
        """The PGDATA that `link` points to: data/<random>/pgdata, 0700, of `owner`.

        The first start moves there whatever `link` held (pytest's empty tmp dir, a restored
        backup, data of an earlier layout) and makes `link` a symlink to it; `origin` beside it
        names the link, and names it again once the link has moved (its home moved with `mv`).
        Data set aside meanwhile is taken back."""
        if not link.is_symlink():
            return self._made_for(link, owner)
        pgdata = Path(os.readlink(link))
        if pgdata.parent.parent != self.data:
            raise RuntimeError(f"{link} links to {pgdata}, not to a data directory in {self.data}")
        if not pgdata.is_dir():
            self._take_back(pgdata.parent, link)
        _name_origin(pgdata.parent, link)
        return pgdata

    def _take_back(self, private: Path, link: Path) -> None:
        aside = self.abandoned / private.name
        if not (aside / "pgdata").is_dir():
            # Its data is gone: a backup that copied the link and not the data, restored on another
            # machine, or a container made again with only the clone kept. Started empty, the stack
            # came up ready with no leads, saying nothing (found by a review).
            raise DataMissing(
                f"PostgreSQL's data for {link} is missing ({private / 'pgdata'} does not exist, nor"
                f" {aside}, where data is set aside for {RETENTION.days} days): restore it there"
                f" (a copy of the stopped data directory, or pg_restore), or remove {link} to start"
                " with an empty database"
            )
        aside.rename(private)
        (private / SET_ASIDE).unlink(missing_ok=True)
        say(f"PostgreSQL data for {link} taken back from {aside}, where it had been set aside")

    def _made_for(self, link: Path, owner: pwd.struct_passwd) -> Path:
        link.parent.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(dir=self.data))
        private.chmod(0o711)
        pgdata = private / "pgdata"
        if link.exists():
            shutil.move(link, pgdata)
        else:
            pgdata.mkdir()
        for directory, _, files in os.walk(pgdata):
            for path in (directory, *(os.path.join(directory, name) for name in files)):
                os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
        pgdata.chmod(0o700)
        link.symlink_to(pgdata)
        _name_origin(private, link)  # last: until then `set_aside_abandoned` skips it
        return pgdata

    def set_aside_abandoned(self, uid: int, now: float) -> None:
        """Move to `abandoned` each data directory whose link is gone or points elsewhere (pytest
        removed its tmp dir, `.leadflow` removed or moved) and whose server is not running,
        saying what, from which link, and how to take it back."""
        for private in self.data.iterdir():
            try:
                link = Path((private / "origin").read_text())
            except OSError:
                continue  # being made right now
            pgdata = private / "pgdata"
            if link.is_symlink() and Path(os.readlink(link)) == pgdata:
                continue
            if running_postmaster(pgdata, uid) is None:
                self._set_aside(private, link, now)

    def _set_aside(self, private: Path, link: Path, now: float) -> None:
        aside = self.abandoned / private.name
        try:
            (private / SET_ASIDE).write_text(f"{now}\n")
            private.rename(aside)
        except OSError:
            return  # another start set it aside first
        until = datetime.fromtimestamp(now, UTC) + RETENTION
        say(
            f"PostgreSQL data of {link} set aside in {aside}: that link no longer points to it"
            f" (removed or moved); kept until {until:%Y-%m-%d %H:%M} UTC. To take it back, start"
            f" the home whose postgres links to {private / 'pgdata'} (it takes it back itself),"
            f" or `mv {aside} {private}` and link a home's postgres to {private / 'pgdata'}"
        )

    def remove_expired(self, now: float) -> None:
        """Remove what was set aside RETENTION or more before `now`."""
        for aside in self.abandoned.iterdir():
            try:
                since = float((aside / SET_ASIDE).read_text())
            except (OSError, ValueError):
                continue  # not ours, or being taken back right now
            if now - since >= RETENTION.total_seconds():
                shutil.rmtree(aside, ignore_errors=True)


def _name_origin(private: Path, link: Path) -> None:
    """`origin` in `private` names `link`; written whole (renamed into place), so a start
    setting abandoned data aside meanwhile never reads it half written."""
    origin = private / "origin"
    if origin.exists() and origin.read_text() == str(link):
        return
    written = private / "origin.new"
    written.write_text(str(link))
    written.replace(origin)


def running_postmaster(pgdata: Path, uid: int) -> int | None:
    """The pid in pgdata's postmaster.pid, if that process is a postgres of `uid` (the file is
    the server user's, so root signals only what it names if that is true)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        process = Path(f"/proc/{pid}")
        if process.stat().st_uid == uid and (process / "comm").read_text().strip() == "postgres":
            return pid
    except (OSError, ValueError, IndexError):
        pass
    return None


def discard_linked(link: Path, private: PrivateData | None = None) -> None:
    """A throwaway home's data (a test's, a benchmark's), removed with its link once its server
    stopped. As root the data is apart from its link (data/<random>), and once the home was
    removed a later start would set it aside for 7 days: about 125 MB a run's. Only data of
    that root whose server is not running is removed."""
    pgdata = Path(os.readlink(link)) if link.is_symlink() else None
    if pgdata is None or pgdata.parent.parent != (private or PrivateData()).data:
        return
    if running_postmaster(pgdata, pgdata.stat().st_uid if pgdata.exists() else -1) is None:
        link.unlink()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def discard_all_linked(folder: Path) -> None:
    """`discard_linked` for every `postgres` link under `folder` (the homes `leadflow dev` made)."""
    for link in folder.rglob("postgres"):
        discard_linked(link)
