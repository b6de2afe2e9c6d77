"""The benchmarks' throwaway homes: a temporary folder for a stack, whose PostgreSQL data goes
with it (as root that data is apart from the home, and a later start would otherwise set it
aside for 7 days: about 125 MB a stack)."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.private_data import discard_all_linked, discard_linked


@contextmanager
def throwaway_home(prefix: str, *links: str) -> Iterator[str]:
    """A temporary folder; once done, the data of each `postgres` link in it (and of `links`,
    named relative to it) is removed with the folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as home:
        try:
            yield home
        finally:
            for link in links:
                discard_linked(Path(home) / link)
            discard_all_linked(Path(home))
