"""Peak memory of a benchmark's process, shared by the benchmarks (imported as ``_memory``, like bench_real
imports bench_tracking: the script's folder is first on ``sys.path``, and spawned children get it too)."""

from __future__ import annotations

import resource


def max_rss_mb() -> float:
    """``ru_maxrss`` of this process, MB: on Linux it includes the peak of the process it was forked from."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def own_peak_mb() -> float:
    """This process's peak resident memory since it started (``VmHWM`` of ``/proc/self/status``), MB.

    Not ``ru_maxrss``: Linux keeps the largest resident size of every address space a process had,
    including the one it was forked with, across ``exec``; a spawned child's ``ru_maxrss`` therefore
    starts at about its parent's peak, here the making of the synthetic pair (a parent that peaked at
    3 GB and freed it spawns a child whose ``ru_maxrss`` is 3098 MB and ``VmHWM`` 28 MB). ``VmHWM``
    belongs to the address space ``exec`` created. Elsewhere than Linux, ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return max_rss_mb()
