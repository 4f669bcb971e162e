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
