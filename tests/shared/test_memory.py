"""A service gives back what a backlog made it allocate: blocks of a fetch response's size,
freed, leave the process no bigger (glibc would otherwise keep them in its heap)."""

import subprocess
import sys
from pathlib import Path

from shared.memory import give_back_large_blocks

# Twenty fetch responses of 16 partitions of ~2 MiB each, record values sliced out of them, and
# something small that lives on allocated between them; then the growth of the RSS in MB.
BACKLOG = """
import sys
from shared.memory import give_back_large_blocks
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
if sys.argv[1] == "given back":
    assert give_back_large_blocks()
start, kept = rss(), []
for _ in range(20):
    response = [b"r" * (2 * 1024 * 1024 + i) for i in range(16)]
    records = [part[j * 1000 : (j + 1) * 1000] for part in response for j in range(0, 2000, 50)]
    kept.append(bytes(2000))
    del response, records
print(rss() - start)
"""


def grown_after_backlog(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", BACKLOG, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).parents[2],  # where `shared` is imported from
    )
    return float(done.stdout)


def test_the_blocks_of_a_backlog_go_back_to_the_system_once_freed() -> None:
    assert grown_after_backlog("given back") < 5
    # What it prevents: glibc's own way keeps a good part of them.
    assert grown_after_backlog("kept") > 20


def test_taking_the_setting_again_is_harmless() -> None:
    assert give_back_large_blocks()
    assert give_back_large_blocks()
