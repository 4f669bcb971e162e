import json

import pytest
from click.testing import CliRunner

from gvfuse.cli.check import check_command
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.check import verify
from gvfuse.publish.month import publish_month
from gvfuse.testing.products import synthetic_monthly_product
from tests.helpers import SCHEMAS


@pytest.fixture
def published(tmp_path):
    publish_month(synthetic_monthly_product(), load_product("gangrigab-2023"), tmp_path, plugins=PluginSet())
    return tmp_path


def test_fresh_publication_verifies(published):
    report = verify(published)
    # the item's 8 COGs, 2 PNGs and 1 style, and the collection's cube
    assert report.ok and report.items_checked == 1 and report.assets_checked == 12
    result = CliRunner().invoke(check_command, [str(published)])
    assert result.exit_code == 0 and "1 item(s), 12 asset(s) checked: OK" in result.output


def test_modified_and_missing_files_are_reported(published):
    cog = published / "202301_sensor_flag.tif"
    data = bytearray(cog.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    cog.write_bytes(bytes(data))
    (published / "202301_thumbnail.png").unlink()
    with open(published / "202301_quicklook.png", "ab") as stream:
        stream.write(b"x")
    kinds = sorted((p.kind, p.asset) for p in verify(published).problems)
    assert kinds == [("checksum", "quicklook"), ("checksum", "sensor_flag"), ("missing-file", "thumbnail"),
                     ("size", "quicklook")]
    result = CliRunner().invoke(check_command, [str(published), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and len(report["problems"]) == 4


def test_missing_item_and_missing_collection_are_reported(published):
    (published / "items" / "gangrigab-2023-202301.json").unlink()
    assert [p.kind for p in verify(published).problems] == ["missing-item"]
    (published / "collection.json").unlink()
    assert [p.kind for p in verify(published).problems] == ["missing-collection"]
    assert CliRunner().invoke(check_command, [str(published)]).exit_code == 1


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"STAC extension schemas not found at {SCHEMAS}")
def test_check_command_also_validates_offline_with_schemas(published):
    assert CliRunner().invoke(check_command, [str(published), "--schemas", str(SCHEMAS)]).exit_code == 0
    item_path = published / "items" / "gangrigab-2023-202301.json"
    item = json.loads(item_path.read_text())
    item["properties"]["processing:software"] = "gvfuse"  # must be an object
    item_path.write_text(json.dumps(item))
    result = CliRunner().invoke(check_command, [str(published), "--schemas", str(SCHEMAS), "--json"])
    assert result.exit_code == 1
    assert [p["kind"] for p in json.loads(result.output)["problems"]] == ["schema"]
