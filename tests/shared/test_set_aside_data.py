"""As root, data whose link no longer points to it is set aside, not removed: a backup-and-restore
drill moved `.leadflow` aside as a safety copy, restored a backup as `.leadflow` and ran
`make run`, and that start deleted the safety copy's database (its link had moved, so it looked
abandoned). Real servers, each test under a root of its own."""

import os
import pwd
import shutil
from pathlib import Path

import pytest

from shared.embedded_postgres import SYSTEM_USER
from shared.private_data import RETENTION, PrivateData
from tests.shared.private_roots import query, started

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root keeps data apart from its link")


@as_root
def test_a_home_moved_aside_keeps_its_data_when_a_restored_home_starts_in_its_place(
    tmp_path: Path, private: PrivateData
) -> None:
    home = tmp_path / "clone" / ".leadflow"
    first = started(home / "postgres", private)
    try:
        query(first.url(), "CREATE TABLE in_the_safety_copy ()")
    finally:
        first.stop()
    pgdata = (home / "postgres").resolve()
    moved = tmp_path / "x" / "leadflow-moved"
    moved.parent.mkdir()
    home.rename(moved)  # mv .leadflow /tmp/x/leadflow-moved
    home.mkdir()  # a `tar -h` backup extracted as .leadflow: a real data directory, no link
    shutil.copytree(pgdata, home / "postgres")
    shutil.copy(moved / "postgres.password", home / "postgres.password")
    restored = started(home / "postgres", private)
    try:
        query(restored.url(), "CREATE TABLE in_the_restored_home ()")
    finally:
        restored.stop()
    again = started(moved / "postgres", private)
    try:
        assert query(again.url(), "SELECT to_regclass('in_the_safety_copy') IS NOT NULL") is True
        assert query(again.url(), "SELECT to_regclass('in_the_restored_home') IS NULL") is True
        assert (moved / "postgres").resolve() == pgdata
    finally:
        again.stop()


@as_root
def test_data_whose_link_is_gone_is_set_aside_and_removed_only_after_the_retention(
    tmp_path: Path, private: PrivateData, capsys: pytest.CaptureFixture[str]
) -> None:
    removed = tmp_path / "removed" / "postgres"
    started(removed, private).stop()
    kept = removed.resolve().parent
    shutil.rmtree(removed.parent)  # as pytest and `make clean` do: the link goes, not its target
    set_at = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    private.set_aside_abandoned(pwd.getpwnam(SYSTEM_USER).pw_uid, now=set_at)
    aside = private.abandoned / kept.name
    assert not kept.exists()
    assert (aside / "pgdata" / "PG_VERSION").is_file()
    said = capsys.readouterr().out
    assert f"PostgreSQL data of {removed} set aside in {aside}" in said
    assert "kept until 2027-01-22 08:00 UTC" in said
    assert f"mv {aside} {kept}" in said
    private.remove_expired(now=set_at + RETENTION.total_seconds() - 1)
    assert aside.is_dir(), "kept for the whole retention"
    private.remove_expired(now=set_at + RETENTION.total_seconds())
    assert not aside.exists()


@as_root
def test_a_home_whose_data_was_set_aside_takes_it_back_at_its_next_start(
    tmp_path: Path, private: PrivateData, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "clone" / ".leadflow" / "postgres"
    first = started(link, private)
    try:
        query(first.url(), "CREATE TABLE taken_back ()")
    finally:
        first.stop()
    (tmp_path / "clone").rename(tmp_path / "elsewhere")
    moved = tmp_path / "elsewhere" / ".leadflow" / "postgres"
    started(tmp_path / "other" / "postgres", private).stop()  # another clone's start sets it aside
    assert not moved.exists(), "its link points to where its data was"
    again = started(moved, private)
    try:
        assert query(again.url(), "SELECT to_regclass('taken_back') IS NOT NULL") is True
    finally:
        again.stop()
    assert f"PostgreSQL data for {moved} taken back from" in capsys.readouterr().out
    assert list(private.abandoned.iterdir()) == []
