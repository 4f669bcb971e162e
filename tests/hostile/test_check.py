"""Case 12: ``gvfuse check`` verifies the indexes, stays inside the publication and never shows a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gvfuse.cli.check import check_command
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.check import verify
from gvfuse.publish.month import publish_month
from gvfuse.testing.products import synthetic_monthly_product

ITEM = Path("items") / "gangrigab-2023-202301.json"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("published") / "pub"
    publish_month(synthetic_monthly_product(), load_product("gangrigab-2023"), root, plugins=PluginSet())
    return root


@pytest.fixture
def published(original: Path, tmp_path: Path) -> Path:
    """A fresh copy of a one-month publication, to tamper with."""
    import shutil

    return Path(shutil.copytree(original, tmp_path / "pub"))


def check(folder: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(check_command, [str(folder), *options])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def kinds(folder: Path) -> list[str]:
    return sorted(p.kind for p in verify(folder).problems)


def test_the_untouched_publication_passes(published):
    assert kinds(published) == []
    assert check(published)[0] == 0


def test_a_missing_catalog_yaml_fails(published):
    (published / "catalog.yaml").unlink()
    assert kinds(published) == ["missing-catalog"]
    status, output = check(published)
    assert status == 1 and "missing-catalog" in output


def test_a_catalog_entry_naming_a_missing_file_fails(published):
    catalog = published / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("202301_count.tif", "209912_count.tif"))
    assert set(kinds(published)) == {"catalog-entry"}
    assert check(published)[0] == 1


def test_malformed_catalog_yaml_is_one_problem_line(published):
    (published / "catalog.yaml").write_text("entries: [unclosed\n  : : :\n")
    assert kinds(published) == ["malformed"]
    status, output = check(published)
    assert status == 1 and "malformed" in output and "line" in output


def test_a_collection_nested_too_deep_is_a_malformed_document_not_a_traceback(published):
    (published / "collection.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "malformed" in kinds(published)
    status, output = check(published)
    assert status == 1 and "malformed" in output


def test_an_item_the_collection_does_not_link_is_reported(published):
    orphan = published / "items" / "gangrigab-2023-209901.json"
    orphan.write_text((published / ITEM).read_text())
    assert kinds(published) == ["orphan-item"]
    status, output = check(published)
    assert status == 1 and "orphan-item" in output and orphan.name in output


def test_an_asset_href_leaving_the_folder_is_refused_not_read(published, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours\n")
    item = json.loads((published / ITEM).read_text())
    item["assets"]["thumbnail"]["href"] = "../../secret.txt"
    item["assets"]["thumbnail"].pop("file:checksum")
    item["assets"]["thumbnail"]["file:size"] = secret.stat().st_size  # would match if it were read
    (published / ITEM).write_text(json.dumps(item))
    assert kinds(published) == ["outside"]
    status, output = check(published)
    assert status == 1 and "outside" in output


def test_an_item_link_leaving_the_folder_is_refused(published, tmp_path):
    collection = json.loads((published / "collection.json").read_text())
    for link in collection["links"]:
        if link["rel"] == "item":
            link["href"] = "../../../../../../../../etc/hostname"
    (published / "collection.json").write_text(json.dumps(collection))
    problems = set(kinds(published))
    assert "outside" in problems and "orphan-item" in problems
    assert check(published)[0] == 1


@pytest.mark.parametrize("target", ["collection.json", str(ITEM)])
@pytest.mark.parametrize("content", ["{ not json", "", "[1, 2]", "\xff\xfe"])
def test_malformed_json_is_a_problem_not_a_traceback(published, target, content):
    (published / target).write_text(content, encoding="latin-1")
    assert "malformed" in kinds(published)
    status, output = check(published, "--json")
    assert status == 1
    report = json.loads(output)
    assert any(p["kind"] == "malformed" and "JSON" in str(p["found"]) for p in report["problems"])


def test_a_malformed_schema_file_is_a_problem_not_a_traceback(published, tmp_path):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "broken.json").write_text("{ not json")
    status, output = check(published, "--schemas", schemas)
    assert status == 1 and "schema" in output and "malformed JSON" in output and "broken.json" in output


# --------------------------------------------------------------------------- the cube (cube.zarr)

CHUNK = Path("cube.zarr") / "vx" / "0.0.0"


def _collection(folder: Path) -> dict:
    return json.loads((folder / "collection.json").read_text())


def test_the_collection_records_every_file_of_the_cube(published):
    from gvfuse.io.checksums import file_fields

    files = _collection(published)["assets"]["cube"]["gvfuse:files"]
    on_disk = sorted(p.relative_to(published / "cube.zarr").as_posix()
                     for p in (published / "cube.zarr").rglob("*") if p.is_file())
    assert list(files) == on_disk and {".zmetadata", "vx/0.0.0", "sensor_flag/.zarray"} <= set(files)
    assert files["vx/0.0.0"] == file_fields(published / CHUNK)


@pytest.mark.parametrize("tamper", ["garbage", "one-byte", "truncated"])
def test_a_changed_chunk_of_the_cube_fails_naming_it(published, tamper):
    chunk = published / CHUNK
    data = chunk.read_bytes()
    chunk.write_bytes({"garbage": bytes(len(data)), "one-byte": data[:-1] + bytes([data[-1] ^ 1]),
                       "truncated": data[: len(data) // 2]}[tamper])
    expected = ["checksum"] if tamper != "truncated" else ["checksum", "size"]
    assert kinds(published) == expected
    status, output = check(published)
    assert status == 1
    assert f"checksum: {chunk} (asset cube): expected 1220" in output, output


def test_changed_cube_metadata_fails(published):
    metadata = published / "cube.zarr" / ".zmetadata"
    metadata.write_text(metadata.read_text().replace("land_ice_surface_speed", "land_ice_surface_sped"))
    assert kinds(published) == ["checksum", "size"]
    assert check(published)[0] == 1


def test_a_missing_chunk_of_the_cube_fails_naming_it(published):
    (published / CHUNK).unlink()
    assert kinds(published) == ["missing-file"]
    status, output = check(published)
    assert status == 1 and f"missing-file: {published / CHUNK} (asset cube)" in output


@pytest.mark.parametrize("extra", ["vx/0.0.1", "vx/.zattrs.bak", "new/.zarray"])
def test_an_extra_file_in_the_cube_fails_naming_it(published, extra):
    path = published / "cube.zarr" / extra
    path.parent.mkdir(exist_ok=True)
    path.write_bytes((published / CHUNK).read_bytes())
    assert kinds(published) == ["extra-file"]
    status, output = check(published)
    assert status == 1 and f"extra-file: {path} (asset cube): a file the collection does not record" in output


def test_a_link_in_the_cube_to_a_file_outside_is_extra_and_never_read(published, tmp_path, monkeypatch):
    import gvfuse.publish.check

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"not yours")
    (published / "cube.zarr" / "vx" / "0.0.1").symlink_to(secret)
    opened: list[Path] = []
    real = gvfuse.publish.check.sha256_multihash
    monkeypatch.setattr(gvfuse.publish.check, "sha256_multihash", lambda p: opened.append(Path(p)) or real(p))
    assert kinds(published) == ["extra-file"]
    assert secret not in opened


def test_a_record_naming_a_file_outside_the_cube_is_refused_not_read(published):
    collection = _collection(published)
    collection["assets"]["cube"]["gvfuse:files"]["../collection.json"] = {"file:size": 1}
    (published / "collection.json").write_text(json.dumps(collection))
    assert kinds(published) == ["outside"]


def test_a_cube_whose_files_are_not_recorded_cannot_pass(published):
    """A publication of an earlier gvfuse (no record), or a cube the collection does not describe at all."""
    collection = _collection(published)
    del collection["assets"]["cube"]["gvfuse:files"]
    (published / "collection.json").write_text(json.dumps(collection))
    assert kinds(published) == ["unrecorded"]
    del collection["assets"]["cube"]
    (published / "collection.json").write_text(json.dumps(collection))
    assert kinds(published) == ["unrecorded"]
    status, output = check(published)
    assert status == 1 and "unrecorded: " in output and "cube.zarr" in output


def test_a_second_month_rerecords_the_cube_and_a_rerun_gives_the_same_bytes(tmp_path):
    definition = load_product("gangrigab-2023")
    runs = []
    for name in ("a", "b"):
        root = tmp_path / name
        for month in ("2023-01", "2023-02"):
            publish_month(synthetic_monthly_product(month=month), definition, root, plugins=PluginSet())
        assert kinds(root) == []
        runs.append({p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})
    assert runs[0] == runs[1]
    publish_month(synthetic_monthly_product(month="2023-02"), definition, tmp_path / "a", force=True,
                  plugins=PluginSet())  # published again over itself
    assert {p.relative_to(tmp_path / "a").as_posix(): p.read_bytes()
            for p in sorted((tmp_path / "a").rglob("*")) if p.is_file()} == runs[0]
