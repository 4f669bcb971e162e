"""Command start-up: wall time of ``gvfuse --version``, ``--help`` and each ``CMD --help``, and what they import.

Usage::

    python benchmarks/bench_startup.py              # 7 warm runs each, plus one cold run
    python benchmarks/bench_startup.py --repeat 15
    python benchmarks/bench_startup.py --only-top   # only --version and --help

Each command runs as a whole process (the ``gvfuse`` console script of this
interpreter's environment). *Warm*: the bytecode caches exist and the files
are in the page cache; the median of ``--repeat`` runs is reported. *Cold*:
one run with ``-X pycache_prefix`` pointing at a fresh empty folder, so no
module (the standard library's included) has bytecode yet: an upper bound of
a first run after installing. CPU time (user + system of the
process) is reported beside wall time: on a machine shared with other jobs it
is the steadier figure. The heavy libraries a command loads are listed
from ``sys.modules`` of an in-process run of the same arguments.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("numpy", "scipy", "rasterio", "dask", "distributed", "xarray", "matplotlib", "pystac", "cv2",
         "skimage", "pyproj", "shapely", "numba", "zarr")

_PROBE = """
import sys
from click.testing import CliRunner
from gvfuse.cli import main
CliRunner().invoke(main, sys.argv[1:])
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[0].split(",")))) or "-")
"""


def _seconds(args: list[str], extra: list[str] | None = None) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *(extra or []), "-m", "gvfuse.cli", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _heavy(args: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", _PROBE.replace("sys.argv[0]", repr(",".join(HEAVY))), *args],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only-top", action="store_true", help="Only --version and --help.")
    options = parser.parse_args()
    from gvfuse.cli import COMMANDS

    cases = [["--version"], ["--help"]]
    if not options.only_top:
        cases += [*([name, "--help"] for name in sorted(COMMANDS)), ["plugins"]]
    print("| command | warm wall median s | warm wall min s | warm CPU median s | cold wall s | cold CPU s "
          "| heavy modules loaded |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for args in cases:
        warm = [_seconds(args) for _ in range(options.repeat)]
        with tempfile.TemporaryDirectory() as empty:
            cold = _seconds(args, ["-X", f"pycache_prefix={Path(empty)}"])
        print(f"| `gvfuse {' '.join(args)}` | {statistics.median(w for w, _ in warm):.3f} "
              f"| {min(w for w, _ in warm):.3f} | {statistics.median(c for _, c in warm):.3f} "
              f"| {cold[0]:.3f} | {cold[1]:.3f} | {_heavy(args)} |")


if __name__ == "__main__":
    main()
