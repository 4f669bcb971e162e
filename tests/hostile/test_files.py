"""Cases 13 and 14: published files are readable by others, and FIFOs (named like scenes, or given as the run
file or the product definition) never hang a command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from gvfuse.io.atomic import write_bytes_atomic
from gvfuse.io.raster import write_bands
from gvfuse.model import Grid
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.month import publish_month
from gvfuse.testing import make_pair
from gvfuse.testing.products import synthetic_monthly_product
from tests.helpers.cli import bound_by_modes

# --------------------------------------------------------------------------- case 13: file modes


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_published_file_gets_the_umask_mode(tmp_path, umask):
    publish_month(synthetic_monthly_product(), load_product("gangrigab-2023"), tmp_path, plugins=PluginSet())
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"202301_vx.tif", "202301_sensor_flag.tif", "collection.json", "catalog.yaml"}
    assert {p.relative_to(tmp_path).as_posix(): oct(_mode(p)) for p in files} == {
        p.relative_to(tmp_path).as_posix(): oct(0o666 & ~umask) for p in files}


def test_each_atomic_writer_applies_the_umask(tmp_path, umask):
    grid = Grid("EPSG:32647", Affine(30, 0, 0, 0, -30, 0), (4, 4))
    for cog in (True, False):
        path = write_bands(tmp_path / f"cog{cog}.tif", {"b": np.ones((4, 4), "f4")}, grid, cog=cog)
        assert _mode(path) == 0o666 & ~umask
    assert _mode(write_bytes_atomic(tmp_path / "x.json", b"{}")) == 0o666 & ~umask


# --------------------------------------------------------------------------- case 14: FIFOs

#: Names each of which some bundled reader would open by name alone.
FIFO_NAMES = [
    "S1A_IW_20230117T234511_DVP_RTC30_G_gpuned_4C2D_VV.tif",  # terrain-corrected Sentinel-1
    "S2B_MSIL1C_20230715T043709_N0509_R033_T47RLQ_20230715T071234.zip",  # Sentinel-2 zip
    "LC08_L1TP_135040_20230123_20230124_02_T1.tar",  # Landsat bundle
    "ortho_20230710.tif",  # UAV
    "plain_20230710.tif",  # generic GeoTIFF
]


def gvfuse(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The command in its own process: a hang fails the test (TimeoutExpired) instead of blocking the suite."""
    return subprocess.run([sys.executable, "-m", "gvfuse.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def fifos(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in FIFO_NAMES:
        os.mkfifo(folder / name)
    return folder


def test_scan_lists_fifos_as_not_regular_files_and_finishes(fifos):
    result = gvfuse("scan", fifos, "--json")
    assert result.returncode == 0, result.stderr
    skipped = {Path(s["path"]).name: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    assert skipped == {name: "not a regular file" for name in FIFO_NAMES}


def test_track_refuses_a_fifo_on_one_line(fifos, tmp_path):
    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    files = pair.write_geotiffs(tmp_path / "in")
    for name in ("S1A_IW_20230117T234511_DVP_RTC30_G_gpuned_4C2D_VV.tif", "plain_20230710.tif"):
        result = gvfuse("track", fifos / name, files["secondary"], "-o", tmp_path / "v.tif", "--dt", 16)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert "not a regular file" in result.stderr
    assert not (tmp_path / "v.tif").exists()


def test_a_fifo_inside_a_scene_folder_is_never_read(tmp_path):
    from gvfuse.errors import MetadataError
    from gvfuse.formats.containers import Container

    os.mkfifo(tmp_path / "member.TIF")
    with pytest.raises(MetadataError, match="not a regular file"):
        Container(tmp_path, "folder").gdal_path("member.TIF")


def test_a_fifo_given_as_a_mask_is_refused_on_one_line(tmp_path):
    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    files = pair.write_geotiffs(tmp_path / "in")
    for name in ("stable.tif", "stable.gpkg"):
        os.mkfifo(tmp_path / name)
        result = gvfuse("track", files["reference"], files["secondary"], "-o", tmp_path / "v.tif", "--dt", 16,
                        "--stable-mask", tmp_path / name)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert "not a regular file" in result.stderr
    assert not (tmp_path / "v.tif").exists()


def test_a_fifo_given_as_the_run_file_is_refused_on_one_line(tmp_path):
    from gvfuse.config import load_config
    from gvfuse.errors import ConfigError

    os.mkfifo(tmp_path / "fifo.toml")
    result = gvfuse("pairs", tmp_path / "fifo.toml", timeout=30)  # its own process: a hang fails, never blocks
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"gvfuse: error: {tmp_path / 'fifo.toml'}: is not a regular file\n"
    # `gvfuse run` (and --dry-run) read the file through the same load_config
    for not_a_file in (tmp_path / "fifo.toml", tmp_path):
        with pytest.raises(ConfigError, match="is not a regular file"):
            load_config(not_a_file, None)


def test_a_fifo_given_as_the_product_definition_is_refused_on_one_line(tmp_path):
    from gvfuse.errors import ConfigError

    os.mkfifo(tmp_path / "product.toml")
    (tmp_path / "scenes").mkdir()
    (tmp_path / "run.toml").write_text('product = "product.toml"\n[sensors.landsat]\n[weighting]\n'
                                       'name = "inverse-variance"\n')
    result = gvfuse("pairs", tmp_path / "run.toml", timeout=30)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "product.toml: is not a regular file" in result.stderr
    for not_a_file in (tmp_path / "product.toml", tmp_path):
        with pytest.raises(ConfigError, match="is not a regular file"):
            load_product(not_a_file)


def test_validation_plots_written_through_the_atomic_writer_leave_only_the_plots(tmp_path):
    from gvfuse.plots import validation_plots

    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    speed = np.hypot(pair.dx_px, pair.dy_px)
    written = validation_plots(tmp_path, pair.dx_px, pair.dy_px, pair.grid, stable_mask=speed < speed.mean())
    assert written and all(p.read_bytes().startswith(b"\x89PNG") for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_pixels_cut_short_behind_a_whole_header_are_one_line(tmp_path):
    from gvfuse.errors import InputError
    from gvfuse.io.raster import read_bands, write_bands

    pair = make_pair("optical", (256, 256), seed=2, max_speed_m_per_day=0.5, cloud_fraction=0.0)
    files = pair.write_geotiffs(tmp_path / "in")
    cut = tmp_path / "cut_20230101.tif"
    write_bands(cut, {"B8": pair.reference}, pair.grid, cog=True)  # a COG: its header comes first
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.6)])
    result = gvfuse("track", cut, files["secondary"], "-o", tmp_path / "v.tif", "--dt", 16)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "truncated or corrupt" in result.stderr and str(cut) in result.stderr
    assert not (tmp_path / "v.tif").exists()
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_bands(cut)


# --------------------------------------------------------------------------- unreadable subfolders


def _dated_scene(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pair = make_pair("optical", (48, 48), seed=2, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    return write_bands(folder / name, {"B8": pair.reference}, pair.grid, cog=False)


def test_an_unreadable_subfolder_is_listed_and_the_rest_scanned(tmp_path, monkeypatch, plugins):
    """Decision: skipped with the reason (like any input that gives no scene), never a traceback or a stop."""
    from gvfuse.pipeline.scan import SKIP_UNREADABLE, scan

    root = tmp_path / "downloads"
    _dated_scene(root / "open", "plain_20230105.tif")
    _dated_scene(root / "locked", "plain_20230125.tif")
    real_iterdir = Path.iterdir

    def iterdir(self: Path) -> Iterator[Path]:
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    report = scan(root, plugins.classes("readers"))
    assert [Path(s.path).name for s in report.scenes] == ["plain_20230105.tif"]
    [skipped] = report.skipped
    assert (Path(skipped.path).name, skipped.reason) == ("locked", SKIP_UNREADABLE)
    assert "Permission denied" in skipped.message


def bound(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command in its own process, which file modes bind even when the tests run as root
    (:func:`tests.helpers.cli.bound_by_modes`)."""
    return subprocess.run(bound_by_modes("-m", "gvfuse.cli", *args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_an_unreadable_subfolder_by_its_mode(tmp_path):
    root = tmp_path / "downloads"
    _dated_scene(root / "open", "plain_20230105.tif")
    _dated_scene(root / "locked", "plain_20230125.tif").parent.chmod(0)
    try:
        result = bound("scan", root, "--json")
    finally:
        (root / "locked").chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert [s["reason"] for s in json.loads(result.stdout)["skipped"]] == ["unreadable folder"]


def test_a_runs_unreadable_input_subfolder_by_its_mode_is_a_listed_problem(tmp_path):
    """``gvfuse pairs`` (and so ``run``, which plans the same way) pairs what it can read and says what it
    could not."""
    from tests.helpers.scenes import optical_pair_run

    run_file = optical_pair_run(tmp_path, "locked-input")
    locked = tmp_path / "scenes" / "locked"
    _dated_scene(locked, "optical_20230115.tif").parent.chmod(0)
    try:
        result = bound("pairs", run_file, "--json")
    finally:
        locked.chmod(0o755)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    [problem] = plan["problems"]
    assert problem.startswith(f"{locked}: unreadable folder - cannot be listed (Permission denied)"), problem
    assert [p["pair_id"] for m in plan["months"] for p in m["pairs"]] != []  # the readable pair is planned


# --------------------------------------------------------------------------- read-only output folders


def _refuse_writes(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make creating any file in ``folder`` fail as a read-only folder does (tests run as root, which ignores modes)."""
    import tempfile

    real = tempfile.NamedTemporaryFile

    def refusing(*args, **kwargs):
        if Path(kwargs.get("dir", "")).absolute() == folder.absolute():
            raise PermissionError(13, "Permission denied", str(folder))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refusing)


def test_track_into_a_read_only_folder_is_refused_before_tracking(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gvfuse.cli import main

    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    files = pair.write_geotiffs(tmp_path / "in")
    out = tmp_path / "ro" / "v.tif"
    out.parent.mkdir()
    _refuse_writes(monkeypatch, out.parent)
    import gvfuse.pipeline.pair

    def never(*args, **kwargs):
        raise AssertionError("tracked although the output folder is read-only")

    monkeypatch.setattr(gvfuse.pipeline.pair, "track_files", never)
    result = CliRunner().invoke(main, ["track", str(files["reference"]), str(files["secondary"]), "-o", str(out),
                                       "--dt", "16"])
    assert result.exit_code == 1, result.output
    assert result.output.strip() == (f"gvfuse: error: {out} [--output]: cannot write into {out.parent} "
                                     "(Permission denied)")


def test_run_into_a_read_only_output_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gvfuse.cli import main

    (tmp_path / "scenes").mkdir()
    (tmp_path / "run.toml").write_text('product = "gangrigab-2023"\noutput_dir = "ro/out"\n[sensors.landsat]\n'
                                       '[weighting]\nname = "inverse-variance"\n')
    (tmp_path / "ro").mkdir()
    _refuse_writes(monkeypatch, tmp_path / "ro")  # out does not exist yet: its parent must take it
    result = CliRunner().invoke(main, ["run", str(tmp_path / "run.toml"), "--workers", "0"])
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert "run.toml [output_dir]: cannot write into" in line and "Permission denied" in line
    assert not (tmp_path / "ro" / "out").exists()


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_track_into_a_folder_by_its_mode(tmp_path):
    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    files = pair.write_geotiffs(tmp_path / "in")
    (tmp_path / "ro").mkdir(mode=0o555)
    before = _listing(tmp_path)
    result = bound("track", files["reference"], files["secondary"], "-o", tmp_path / "ro" / "v.tif", "--dt", 16)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"gvfuse: error: {tmp_path / 'ro' / 'v.tif'} [--output]: cannot write into {tmp_path / 'ro'} "
        "(Permission denied)"]
    assert _listing(tmp_path) == before


def test_run_into_an_output_folder_by_its_mode(tmp_path):
    from tests.helpers.scenes import optical_pair_run

    run_file = optical_pair_run(tmp_path, "read-only")
    (tmp_path / "out").mkdir(mode=0o555)
    before = _listing(tmp_path)
    result = bound("run", run_file, "--workers", 0)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"gvfuse: error: {run_file} [output_dir]: cannot write into {tmp_path / 'out'} (Permission denied)"]
    assert _listing(tmp_path) == before  # no pair cache, no state, nothing tracked


@pytest.mark.parametrize("inside", [False, True])
def test_demo_into_a_folder_by_its_mode(tmp_path, inside):
    (tmp_path / "ro").mkdir(mode=0o555)
    directory = tmp_path / "ro" / "demo" if inside else tmp_path / "ro"
    result = bound("demo", directory, "--size", "small", "--workers", 0)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"gvfuse: error: {directory} [DIRECTORY]: cannot write into {tmp_path / 'ro'} (Permission denied)"]
    assert _listing(tmp_path) == ["ro"]


def test_demo_into_a_read_only_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import gvfuse.demo
    import gvfuse.pipeline.run
    from gvfuse.cli import main

    def never(*args, **kwargs):
        raise AssertionError("started although the folder is read-only")

    monkeypatch.setattr(gvfuse.pipeline.run, "dask_client", never)
    monkeypatch.setattr(gvfuse.demo, "run_demo", never)
    (tmp_path / "ro").mkdir()
    _refuse_writes(monkeypatch, tmp_path / "ro")
    result = CliRunner().invoke(main, ["demo", str(tmp_path / "ro"), "--size", "small"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"gvfuse: error: {tmp_path / 'ro'} [DIRECTORY]: cannot write into {tmp_path / 'ro'} (Permission denied)"]
    assert not list((tmp_path / "ro").iterdir())


# --------------------------------------------------------------------------- a read-only folder inside a publication


def _digests(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("folder", ["items", "cube.zarr", "."])
def test_a_read_only_folder_of_the_publication_publishes_nothing_of_the_month(tmp_path, monkeypatch, folder):
    """Found before anything is made: the renames would stop half-way (COGs without their item, an item
    without the cube, collection and catalog that describe it)."""
    from gvfuse.errors import InputError

    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())
    before = _digests(tmp_path)
    _refuse_writes(monkeypatch, tmp_path / folder)
    with pytest.raises(InputError, match=rf"cannot write into {tmp_path / folder} \(Permission denied\); nothing "
                                         "of 2023-02 was published"):
        publish_month(synthetic_monthly_product(month="2023-02"), definition, tmp_path, plugins=PluginSet())
    assert _digests(tmp_path) == before
    monkeypatch.undo()
    publish_month(synthetic_monthly_product(month="2023-02"), definition, tmp_path, plugins=PluginSet())
    from gvfuse.publish.check import verify

    assert verify(tmp_path).ok


@pytest.mark.parametrize("folder", ["items", "cube.zarr"])
def test_a_folder_of_the_publication_read_only_by_its_mode_publishes_nothing_of_the_month(tmp_path, folder):
    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path / "pub", plugins=PluginSet())
    before = _digests(tmp_path / "pub")
    (tmp_path / "pub" / folder).chmod(0o555)
    script = ("from gvfuse.plugins import PluginSet; from gvfuse.product import load_product; "
              "from gvfuse.publish.month import publish_month; "
              "from gvfuse.testing.products import synthetic_monthly_product; "
              f"publish_month(synthetic_monthly_product(month='2023-02'), load_product('gangrigab-2023'), "
              f"{str(tmp_path / 'pub')!r}, plugins=PluginSet())")
    try:
        result = subprocess.run(bound_by_modes("-c", script), capture_output=True, text=True, timeout=120)
    finally:
        (tmp_path / "pub" / folder).chmod(0o755)
    assert result.returncode == 1
    assert (f"InputError: {tmp_path / 'pub'}: cannot write into {tmp_path / 'pub' / folder} (Permission denied); "
            "nothing of 2023-02 was published") in result.stderr
    assert _digests(tmp_path / "pub") == before
