"""How much CPU the rest of the machine used during a run: the noise in that sample.

The machine is shared (2 cores); the 1-minute load average cannot tell other people's work
from the benchmark's own, so this counts CPU seconds from /proc/stat instead, less what the
contender and the emulator used.
"""

from __future__ import annotations

import os

TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds spent not idle, over all cores, since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one live process."""
    with open(f"/proc/{pid}/stat") as f:
        after_name = f.read().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / TICK
