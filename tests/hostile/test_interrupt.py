"""Ctrl-C (SIGINT) while a month is published: one line, exit status 130, no half month, and a rerun finishes it
with the bytes an uninterrupted run gives.

The interrupt is sent at a known point of a real ``gvfuse run`` process: a throw-away plugin
(:func:`tests.helpers.plugins.fake_distribution`) waits there, after saying so in a file. Two points: while the
month is made in its staging folder (the ``gvfuse_stac_item_ready`` event: the month is dropped, the
publication stays as it was), and while it is moved into place (the cube being rewritten: the interrupt waits
until the month and its indexes are all in place, then stops the run).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gvfuse.cli import main
from gvfuse.cli.common import EXIT_INTERRUPTED, INTERRUPTED
from gvfuse.io.atomic import InterruptedAfterCommit, uninterrupted
from gvfuse.io.raster import write_bands
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.check import verify
from gvfuse.publish.month import publish_month
from gvfuse.testing import make_pair
from gvfuse.testing.products import synthetic_monthly_product
from tests.helpers.plugins import fake_distribution
from tests.helpers.scenes import product_toml

#: Two months of one optical pair each: January is published first, March is the month interrupted.
MONTHS = {"2023-01": ("20230101", "20230130"), "2023-03": ("20230301", "20230330")}
RUN = '''product = "product.toml"
input_dir = "scenes"
output_dir = "out"
months = {months}
[sensors.optical]
reader = "geotiff"
pairing = "optical"
tracker = "ncc"
tracker_parameters = {{ window_px = 16, step_px = 4 }}
max_speed_m_per_day = 1.0
[weighting]
name = "inverse-variance"
'''

#: Waits where the test interrupts it: ``GVFUSE_TEST_WAIT`` names the point, ``GVFUSE_TEST_READY`` the file it
#: writes when it is there. Imported by the subprocess's plugin manager, so it can also wrap a function.
WAITING_PLUGIN = '''
import os
import time
from pathlib import Path

from gvfuse.hookspecs import hookimpl

POINT = os.environ.get("GVFUSE_TEST_WAIT")


def wait_here(seconds):
    """Say so, then wait: the interrupt comes at once (here it stops the wait, unless it is held)."""
    Path(os.environ["GVFUSE_TEST_READY"]).write_text("here")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)


@hookimpl
def gvfuse_stac_item_ready(item, product):
    if POINT == "staging":
        wait_here(60)


if POINT == "commit":
    import gvfuse.publish.month as month

    real_write_cube = month.write_cube

    def write_cube(*args, **kwargs):
        wait_here(1.5)  # held: the wait runs to its end, then the month is finished
        return real_write_cube(*args, **kwargs)

    month.write_cube = write_cube
'''


#: Standard error of the interrupted run: the progress bar's label (not a terminal: no bar), then one line.
PROGRESS_AND_ONE_LINE = ["tracking pairs", f"gvfuse: error: {INTERRUPTED}"]


def _digests(root: Path) -> dict[str, str]:
    """Every file of a publication but the run's own state (``.gvfuse-state``: absolute paths, not products)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != ".gvfuse-state"}


def _run(folder: Path, months: list[str]) -> None:
    (folder / "run.toml").write_text(RUN.format(months=json.dumps(months)))
    result = CliRunner().invoke(main, ["-q", "run", str(folder / "run.toml"), "--workers", "0"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def january_published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January published, both pairs in the cache (so the interrupted run only fuses and publishes)."""
    root = tmp_path_factory.mktemp("interrupt") / "project"
    scenes = root / "scenes"
    scenes.mkdir(parents=True)
    for i, (first, last) in enumerate(MONTHS.values()):
        pair = make_pair("optical", (64, 64), dt_days=29, max_speed_m_per_day=0.5, cloud_fraction=0.0, seed=20 + i)
        write_bands(scenes / f"optical_{first}.tif", {"B8": pair.reference}, pair.grid, cog=False)
        write_bands(scenes / f"optical_{last}.tif", {"B8": pair.secondary}, pair.grid, cog=False)
    (root / "product.toml").write_text(product_toml(pair.grid, "interrupt-test", "two months", "2023-01", "2023-03"))
    _run(root, list(MONTHS))  # the reference: both months, uninterrupted
    shutil.move(root / "out", root.parent / "both-months")
    _run(root, ["2023-01"])
    return root


@pytest.fixture
def project(january_published: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(january_published, tmp_path / "project", symlinks=True))


def _interrupted_run(project: Path, point: str, plugin_site: Path, workers: str = "0"
                     ) -> subprocess.CompletedProcess[str]:
    """``gvfuse run`` of both months in its own process group, sent SIGINT once the plugin waits at ``point``:
    to the whole group, as Ctrl-C in a terminal is (a local dask cluster's workers get it too)."""
    (project / "run.toml").write_text(RUN.format(months=json.dumps(list(MONTHS))))
    fake_distribution(plugin_site, "thirdparty-wait", "thirdparty_wait", WAITING_PLUGIN)
    ready = project / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), *sys.path]),
           "GVFUSE_TEST_WAIT": point, "GVFUSE_TEST_READY": str(ready)}
    process = subprocess.Popen([sys.executable, "-m", "gvfuse.cli", "run", str(project / "run.toml"), "--workers",
                                workers], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never reached the waiting point"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    ready.unlink()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _state(project: Path, month: str) -> dict | None:
    path = project / "out" / ".gvfuse-state" / "months" / f"{month}.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.mark.slow  # two runs in this process, one in its own: about 11 s (15 s with a local cluster)
@pytest.mark.parametrize("workers", ["0", "2"])  # no dask; a local cluster, whose workers get Ctrl-C too
def test_ctrl_c_while_a_month_is_made_leaves_the_publication_as_it_was(january_published, project, plugin_site,
                                                                       workers):
    before = _digests(project / "out")
    state_before = _state(project, "2023-01")
    result = _interrupted_run(project, "staging", plugin_site, workers)
    assert result.returncode == EXIT_INTERRUPTED, result.stderr
    assert result.stderr.strip().splitlines() == PROGRESS_AND_ONE_LINE, result.stderr
    assert _digests(project / "out") == before  # no file of March, no staging folder, the same indexes
    assert verify(project / "out").ok
    assert _state(project, "2023-03") is None  # never published: the next run publishes it, not refuses it
    assert _state(project, "2023-01") == state_before
    _run(project, list(MONTHS))
    assert _digests(project / "out") == _digests(january_published.parent / "both-months")


@pytest.mark.slow  # about 7 s more
def test_ctrl_c_while_a_month_is_moved_into_place_waits_until_it_all_is(january_published, project, plugin_site):
    result = _interrupted_run(project, "commit", plugin_site)
    assert result.returncode == EXIT_INTERRUPTED, result.stderr
    assert result.stderr.strip().splitlines() == PROGRESS_AND_ONE_LINE, result.stderr
    assert verify(project / "out").ok  # March whole: its files, its item, the cube, collection and catalog
    assert (project / "out" / "202303_vx.tif").is_file()
    assert _state(project, "2023-03")["state"] == "publishing"  # as after a kill: the next run publishes it again
    _run(project, list(MONTHS))
    assert _state(project, "2023-03")["state"] == "done"
    assert _digests(project / "out") == _digests(january_published.parent / "both-months")


# --------------------------------------------------------------------------- in this process (the default suite)


def test_the_interrupt_while_a_month_is_made_leaves_the_publication_as_it_was(tmp_path):
    from gvfuse.hookspecs import hookimpl
    from gvfuse.plugins import PluginInfo

    class Interrupting:
        @hookimpl
        def gvfuse_stac_item_ready(self, item, product):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while February is made in its staging folder
            time.sleep(5)  # never reached: the interrupt is raised here

    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())
    before = _digests(tmp_path)
    plugins = PluginSet()
    plugins.add(Interrupting(), PluginInfo("interrupting", "test", "0", "tests"))
    with pytest.raises(KeyboardInterrupt) as err:
        publish_month(synthetic_monthly_product(month="2023-02"), definition, tmp_path, plugins=plugins)
    assert not isinstance(err.value, InterruptedAfterCommit)
    assert _digests(tmp_path) == before  # no file or item of February, no staging folder, the same indexes
    publish_month(synthetic_monthly_product(month="2023-02"), definition, tmp_path, plugins=PluginSet())
    assert verify(tmp_path).ok  # not refused: nothing of February was there


def test_a_command_interrupted_is_one_line_and_status_130(monkeypatch):
    import gvfuse.publish.check

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gvfuse.publish.check, "verify", interrupted)
    result = CliRunner().invoke(main, ["check", "."])
    assert result.exit_code == EXIT_INTERRUPTED == 130
    assert result.output.strip().splitlines() == [f"gvfuse: error: {INTERRUPTED}"]


def test_the_interrupt_held_while_moving_into_place_is_raised_after(tmp_path, monkeypatch):
    import gvfuse.publish.month as month

    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())
    real = month.write_cube

    def interrupted_write_cube(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after February's files and item are in place
        return real(*args, **kwargs)

    monkeypatch.setattr(month, "write_cube", interrupted_write_cube)
    with pytest.raises(KeyboardInterrupt) as err:  # caught whatever it is: a plain one would stop pytest itself
        publish_month(synthetic_monthly_product(month="2023-02"), definition, tmp_path, plugins=PluginSet())
    assert isinstance(err.value, InterruptedAfterCommit)
    report = verify(tmp_path)
    assert report.ok and report.items_checked == 2, report.problems
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's handler is back


def test_uninterrupted_lets_an_exception_through_and_gives_a_held_signal_to_the_handler_that_was_there():
    calls: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            assert calls == []
        assert calls == [signal.SIGINT]
        with pytest.raises(ValueError), uninterrupted():
            raise ValueError("the block's own error goes on")
    finally:
        signal.signal(signal.SIGINT, previous)
