"""Case 5, continued: ``gvfuse track -o`` never replaces a file of an input scene nor writes into its folder.

Beyond the path given (tests/hostile/test_paths.py): the other files of a scene given by one of its files
(the MTL and QA_PIXEL beside a Landsat ``_B8.TIF``), a UAV orthomosaic's sidecar, and a new file inside an
input scene's folder, without ``--force`` too. Refused in one line before anything is read or written.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from gvfuse.cli import main
from gvfuse.model import Grid
from gvfuse.testing.provider_layouts import write_landsat_scene, write_uav_orthomosaic
from tests.helpers.scenes import textured

UTC = dt.timezone.utc
GRID = Grid("EPSG:32647", Affine(15.0, 0, 255000.0, 0, -15.0, 3245000.0), (96, 96))
UAV_GRID = Grid("EPSG:32647", Affine(0.5, 0, 255000.0, 0, -0.5, 3245000.0), (96, 96))
#: Two months at 0.5 m: the default 5 m/day would search 600 px around every window.
SLOW = ("--max-speed", 0.01, "--window", 32)  # 96 px test images: a window that fits


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def refused(status: int, output: str, what: str) -> bool:
    """One line, exit 1, naming the option and what the output would replace or be written into."""
    return (status == 1 and output.count("\n") == 1 and output.startswith("gvfuse: error: ")
            and "[--output]" in output and what in output and output.rstrip().endswith("choose another -o"))


def snapshot(*folders: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def landsat(tmp_path: Path) -> tuple[Path, Path]:
    """Two Landsat 8 product folders, 16 days apart (the same texture: still ground)."""
    folders = []
    for day in (2, 18):
        folders.append(write_landsat_scene(
            tmp_path / "scenes", pixels_b8=textured(*GRID.shape, seed=1).astype("float32"), grid=GRID,
            acquired_at=dt.datetime(2023, 6, day, 4, 20, tzinfo=UTC), wrs_path=135, wrs_row=40,
            cloud_cover_percent=0.0))
    return folders[0], folders[1]


@pytest.fixture
def orthos(tmp_path: Path) -> tuple[Path, Path]:
    """Two UAV orthomosaics of one site with their JSON sidecars, side by side in one folder."""
    return tuple(write_uav_orthomosaic(  # type: ignore[return-value]
        tmp_path / "uav", pixels=textured(*UAV_GRID.shape, seed=3, low=10, high=240).astype("float64"),
        grid=UAV_GRID, acquired_at=dt.datetime(2023, month, 3, 5, tzinfo=UTC), site="gangrigab-terminus")
        for month in (5, 7))


def band_of(folder: Path) -> Path:
    return folder / f"{folder.name}_B8.TIF"


@pytest.mark.parametrize("member", ["MTL.txt", "QA_PIXEL.TIF"])
def test_a_file_beside_a_band_given_as_the_scene_is_never_replaced(landsat, member):
    ref, sec = landsat
    before = snapshot(ref, sec)
    status, output = invoke("track", band_of(ref), sec, "-o", ref / f"{ref.name}_{member}", "--force")
    assert refused(status, output, "would replace a file of the reference scene"), output
    assert snapshot(ref, sec) == before


def test_a_file_of_the_secondary_linked_from_outside_is_never_replaced(landsat, tmp_path):
    ref, sec = landsat
    for kind, link in (("symlink", os.symlink), ("hardlink", os.link)):
        out = tmp_path / f"{kind}.txt"
        link(sec / f"{sec.name}_MTL.txt", out)
        before = snapshot(ref, sec)
        status, output = invoke("track", ref, band_of(sec), "-o", out, "--force")
        assert refused(status, output, "a file of the secondary scene"), output
        assert f"{sec.name}_MTL.txt" in output  # what it would replace is named
        assert snapshot(ref, sec) == before


@pytest.mark.parametrize("suffix", [".json", ".txt"])
def test_a_uav_sidecar_is_never_replaced_even_with_force(orthos, suffix):
    ref, sec = orthos
    before = snapshot(ref.parent)
    status, output = invoke("track", ref, sec, "-o", ref.with_suffix(suffix), "--force", *SLOW)
    assert refused(status, output, f"would replace a file of the reference scene {ref}"), output
    assert snapshot(ref.parent) == before  # the .json unchanged, no .txt written


def test_nothing_is_written_into_a_scene_folder_given_as_input(landsat):
    ref, sec = landsat
    before = snapshot(ref, sec)
    status, output = invoke("track", ref, sec, "-o", ref / "out.tif")
    assert refused(status, output, f"would be written inside the reference scene {ref}"), output
    assert snapshot(ref, sec) == before  # not even the write probe's temporary file


@pytest.mark.parametrize("given", ["band", "mtl"])
def test_nothing_is_written_into_the_folder_of_a_scene_given_by_one_of_its_files(landsat, given):
    ref, sec = landsat
    scene = band_of(sec) if given == "band" else sec / f"{sec.name}_MTL.txt"
    before = snapshot(ref, sec)
    status, output = invoke("track", ref, scene, "-o", sec / "out.tif")
    assert refused(status, output, "would be written inside the folder of the secondary scene"), output
    assert snapshot(ref, sec) == before


def test_a_folder_reached_through_a_link_is_still_the_scene_folder(landsat, tmp_path):
    ref, sec = landsat
    (tmp_path / "elsewhere").symlink_to(ref, target_is_directory=True)
    status, output = invoke("track", band_of(ref), sec, "-o", tmp_path / "elsewhere" / "out.tif")
    assert refused(status, output, f"{ref}, the folder of the reference scene"), output
    assert not (ref / "out.tif").exists()


@pytest.mark.parametrize(("option", "name"), [("--stable-mask", "stable-ground mask"),
                                              ("--glacier-mask", "glacier mask")])
def test_a_mask_is_never_replaced(landsat, tmp_path, option, name):
    from gvfuse.io.raster import write_bands

    ref, sec = landsat
    mask = write_bands(tmp_path / "mask.tif", {"mask": np.ones(GRID.shape, "uint8")}, GRID, dtype="uint8")
    before = mask.read_bytes()
    status, output = invoke("track", ref, sec, option, mask, "-o", mask, "--force")
    assert refused(status, output, f"would replace the {name} {mask}"), output
    assert mask.read_bytes() == before


def test_an_output_beside_the_landsat_scenes_is_written(landsat, tmp_path):
    ref, sec = landsat
    status, output = invoke("track", band_of(ref), sec, "-o", tmp_path / "scenes" / "v.tif", *SLOW)
    assert status == 0 and (tmp_path / "scenes" / "v.tif").is_file(), output


def test_an_output_beside_the_orthomosaics_is_written(orthos):
    ref, sec = orthos
    status, output = invoke("track", ref, sec, "-o", ref.parent / "v_ortho.tif", *SLOW)
    assert status == 0 and (ref.parent / "v_ortho.tif").is_file(), output
