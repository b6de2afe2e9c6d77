"""As root, each test of the embedded PostgreSQL's data keeps it under a root of its own (not the
machine's /var/lib/leadflow-embedded-postgres, shared with other clones' stacks and test runs), so
setting abandoned data aside there never touches theirs."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.private_data import PrivateData


@pytest.fixture
def private() -> Iterator[PrivateData]:
    """A root in /tmp (not pytest's tmp_path: its 0700 folders keep the server's user out)."""
    root = Path(tempfile.mkdtemp(prefix="leadflow-private-data-"))
    try:
        yield PrivateData(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
