"""Cases 5, 10, 11: inputs are never overwritten, ids never become paths, scene metadata never leaves its scene."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from gvfuse.cli import main
from gvfuse.errors import ConfigError, InputError, MetadataError
from gvfuse.formats.containers import Container
from gvfuse.plugins import PluginSet
from gvfuse.product import ProductDefinition, load_product
from gvfuse.publish.month import publish_month
from gvfuse.testing import make_pair
from gvfuse.testing.products import synthetic_monthly_product
from gvfuse.testing.provider_layouts import format_mtl
from gvfuse_plugins.readers import LandsatReader, UavReader
from tests.helpers.scenes import LANDSAT_ID, landsat_groups, make_landsat_folder, textured, write_raster

#: What an outside file holds: it must never show in any message.
SECRET = "root:x:0:0:root:/root:/bin/bash"


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "passwd"
    path.write_text(SECRET + "\nuser:x:1000:1000::/home/user:/bin/sh\n")
    return path


# --------------------------------------------------------------------------- case 5: track never destroys an input


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    return pair.write_geotiffs(tmp_path_factory.mktemp("scenes"))


def _refused(status: int, output: str) -> bool:
    return (status == 1 and output.count("\n") == 1 and "[--output]: would replace " in output
            and ("the reference scene" in output or "the secondary scene" in output))


@pytest.mark.parametrize("role", ["reference", "secondary"])
def test_track_output_naming_an_input_is_refused_even_with_force(scenes, role):
    before = scenes[role].read_bytes()
    status, output = invoke("track", scenes["reference"], scenes["secondary"], "-o", scenes[role], "--force",
                            "--dt", 16)
    assert _refused(status, output), output
    assert scenes[role].read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_track_output_linked_to_an_input_is_refused(scenes, tmp_path, link):
    out = tmp_path / "v.tif"
    (os.symlink if link == "symlink" else os.link)(scenes["reference"], out)
    before = scenes["reference"].read_bytes()
    status, output = invoke("track", scenes["reference"], scenes["secondary"], "-o", out, "--force", "--dt", 16)
    assert _refused(status, output), output
    assert scenes["reference"].read_bytes() == before


def test_track_output_inside_an_input_scene_folder_is_refused(scenes, tmp_path):
    folder = make_landsat_folder(tmp_path)
    band = folder / f"{LANDSAT_ID}_B8.TIF"
    before = band.read_bytes()
    status, output = invoke("track", folder, scenes["secondary"], "-o", band, "--force", "--dt", 16)
    assert _refused(status, output), output
    assert band.read_bytes() == before


# --------------------------------------------------------------------------- case 10: product ids are safe slugs


def _product_toml(path: Path, product_id: str) -> Path:
    text = (Path(str(load_product("gangrigab-2023").source))).read_text()
    lines = [f'id = "{product_id}"' if line.startswith("id = ") else line for line in text.splitlines()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("product_id", ["../../../../elsewhere/pwned", "/abs/pwned", "a/b", "..", ".hidden",
                                        "with space", "x" * 65, ""])
def test_unsafe_product_ids_are_refused_naming_file_and_field(tmp_path, product_id):
    path = _product_toml(tmp_path / "bad.toml", product_id)
    with pytest.raises(ConfigError) as err:
        load_product(path)
    assert err.value.field == "id" and str(path) in str(err.value)
    with pytest.raises(ValueError, match="safe slug"):
        ProductDefinition(**{**_fields(load_product("gangrigab-2023")), "id": product_id})


def _fields(definition: ProductDefinition) -> dict[str, object]:
    import attrs

    return attrs.asdict(definition, recurse=False)


def test_unsafe_product_id_is_an_input_error_naming_the_field(tmp_path):
    path = _product_toml(tmp_path / "bad.toml", "../../../../elsewhere/pwned")
    (tmp_path / "scenes").mkdir()
    status, output = invoke("scan", tmp_path / "scenes", "--product", path)
    assert status == 1 and output.startswith("gvfuse: error: ") and "[id]" in output
    assert not (tmp_path.parent / "elsewhere").exists()


def test_publishing_never_writes_through_a_link_out_of_the_folder(tmp_path):
    destination, elsewhere = tmp_path / "products", tmp_path / "elsewhere"
    destination.mkdir()
    elsewhere.mkdir()
    (destination / "items").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match="outside the folder"):
        publish_month(synthetic_monthly_product(), load_product("gangrigab-2023"), destination, plugins=PluginSet())
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in destination.iterdir()] == ["items"]  # refused before anything was written


# --------------------------------------------------------------------------- case 11: metadata stays in the scene


def _landsat_with(tmp_path: Path, **contents: str) -> Path:
    groups = landsat_groups()
    groups["PRODUCT_CONTENTS"].update(contents)
    return make_landsat_folder(tmp_path / "scene", groups=groups)


def test_a_symlinked_mtl_pointing_outside_is_refused_and_never_quoted(tmp_path, secret):
    folder = make_landsat_folder(tmp_path / "downloads")
    mtl = folder / f"{LANDSAT_ID}_MTL.txt"
    mtl.unlink()
    mtl.symlink_to(secret)
    with pytest.raises(MetadataError, match="outside the scene folder") as err:
        LandsatReader().open(folder)
    assert "root:" not in str(err.value)
    status, output = invoke("scan", tmp_path / "downloads", "--json")
    assert status == 0 and "outside the scene folder" in output and "root:" not in output


def test_an_mtl_that_is_not_one_is_not_quoted(tmp_path, secret):
    folder = make_landsat_folder(tmp_path)
    (folder / f"{LANDSAT_ID}_MTL.txt").write_text(secret.read_text())
    with pytest.raises(MetadataError, match="line 1 is not 'KEY = value'") as err:
        LandsatReader().open(folder)
    assert "root:" not in str(err.value)


@pytest.mark.parametrize("name", ["/etc/hostname", "../outside/passwd", "sub/../../x.TIF", "..\\x.TIF"])
def test_an_mtl_band_name_that_is_a_path_is_refused(tmp_path, name):
    folder = _landsat_with(tmp_path, FILE_NAME_BAND_8=name)
    with pytest.raises(MetadataError) as err:
        LandsatReader().open(folder)
    assert err.value.field == "FILE_NAME_BAND_8"


def test_an_mtl_band_file_linked_outside_is_refused(tmp_path, secret):
    folder = make_landsat_folder(tmp_path)
    band = folder / f"{LANDSAT_ID}_B8.TIF"
    outside = secret.parent / "band.TIF"
    band.rename(outside)
    band.symlink_to(outside)
    with pytest.raises(MetadataError, match="outside the scene folder"):
        LandsatReader().open(folder)


@pytest.mark.parametrize("member", ["../x", "/etc/hostname", "a/../../x", ""])
def test_container_members_never_leave_the_container(tmp_path, member):
    for container in (Container(tmp_path, "folder"), Container(tmp_path / "s.zip", "zip")):
        with pytest.raises(MetadataError):
            container.gdal_path(member)
        with pytest.raises(MetadataError):
            container.read_bytes(member)


def _ortho(path: Path) -> Path:
    rgb = np.stack([textured(40, 40, seed=s, low=1, high=250).astype("uint8") for s in (1, 2, 3)])
    write_raster(path, rgb, Affine(0.1, 0, 260000, 0, -0.1, 3240000))
    return path


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_a_uav_sidecar_linked_outside_is_refused_and_never_quoted(tmp_path, secret, suffix):
    ortho = _ortho(tmp_path / "downloads" / "ortho_site.tif")
    ortho.with_suffix(suffix).symlink_to(secret)
    with pytest.raises(MetadataError, match="outside the orthomosaic's folder") as err:
        UavReader().open(ortho)
    assert "root:" not in str(err.value)
    status, output = invoke("scan", tmp_path / "downloads")
    assert status == 0 and "malformed metadata" in output and "root:" not in output


def test_a_uav_sidecar_that_is_not_a_date_is_not_quoted(tmp_path, secret):
    ortho = _ortho(tmp_path / "ortho_site.tif")
    ortho.with_suffix(".txt").write_text(secret.read_text())
    with pytest.raises(MetadataError, match="not an ISO 8601") as err:
        UavReader().open(ortho)
    assert "root:" not in str(err.value)
    ortho.with_suffix(".txt").write_text("2023-13-45\n")  # a date gone wrong is quoted, briefly
    with pytest.raises(MetadataError, match="'2023-13-45'"):
        UavReader().open(ortho)


def test_quoted_metadata_values_are_short_and_printable(tmp_path):
    folder = _landsat_with(tmp_path)
    groups = landsat_groups()
    groups["IMAGE_ATTRIBUTES"]["CLOUD_COVER"] = "9" * 500 + "\x1b[31mred"
    (folder / f"{LANDSAT_ID}_MTL.txt").write_text(format_mtl(groups, "txt"))
    with pytest.raises(MetadataError, match="CLOUD_COVER is not a number") as err:
        LandsatReader().open(folder)
    assert len(str(err.value)) < 300 and "\x1b" not in str(err.value)


# --------------------------------------------------------------------------- git-annex / DataLad links


def _annex(tmp_path: Path, file: Path) -> Path:
    """Move ``file`` into a git-annex object store outside the downloads and leave a link, as ``git annex add``."""
    key = f"SHA256E-s{file.stat().st_size}--{abs(hash(file.name)):x}{file.suffix}"
    target = tmp_path / "dataset" / ".git" / "annex" / "objects" / "Xx" / "Yy" / key / key
    target.parent.mkdir(parents=True)
    file.rename(target)
    file.symlink_to(target)
    return target


def test_a_scene_whose_files_are_git_annex_links_out_of_its_folder_is_read(tmp_path):
    """Decision: links to git-annex objects are read (never written); any other link out stays refused."""
    folder = make_landsat_folder(tmp_path / "downloads")
    for name in (f"{LANDSAT_ID}_MTL.txt", f"{LANDSAT_ID}_B8.TIF"):
        _annex(tmp_path, folder / name)
    scene = LandsatReader().open(folder)
    assert scene.scene_id == LANDSAT_ID
    status, output = invoke("scan", tmp_path / "downloads", "--json")
    assert status == 0 and [s["scene_id"] for s in json.loads(output)["scenes"]] == [LANDSAT_ID]


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_a_uav_sidecar_that_is_a_git_annex_link_is_read(tmp_path, suffix):
    ortho = _ortho(tmp_path / "downloads" / "ortho_site.tif")
    sidecar = ortho.with_suffix(suffix)
    sidecar.write_text('{"acquired_at": "2023-07-10"}' if suffix == ".json" else "2023-07-10\n")
    _annex(tmp_path, sidecar)
    assert UavReader().open(ortho).acquired_at.date().isoformat() == "2023-07-10"


def test_a_link_dressed_as_an_annex_object_but_not_one_is_refused(tmp_path, secret):
    folder = make_landsat_folder(tmp_path / "downloads")
    mtl = folder / f"{LANDSAT_ID}_MTL.txt"
    mtl.unlink()
    mtl.symlink_to(secret)  # a file outside, not under annex/objects/KEY/KEY
    with pytest.raises(MetadataError, match="outside the scene folder"):
        LandsatReader().open(folder)
