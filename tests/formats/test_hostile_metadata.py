"""Malformed, truncated, hostile and missing metadata: a MetadataError naming file and field, nothing written."""

from __future__ import annotations

import pytest

from gvfuse.errors import MetadataError
from gvfuse.formats.safexml import parse_xml
from gvfuse_plugins.readers import Sentinel1Reader, Sentinel2Reader
from tests.helpers.scenes import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    make_s1_safe,
    make_s2_safe,
    zip_folder,
)


def _files(root):
    return sorted(p for p in root.rglob("*"))


@pytest.mark.parametrize("content,field", [
    (BILLION_LAUGHS, "DOCTYPE"),
    (EXTERNAL_ENTITY, "DOCTYPE"),
    ("<?xml version='1.0'?><n1:Level-1C_User_Product xmlns:n1='x'><General_Info><PRODUCT_START", "document"),
    ("<not xml at all", "document"),
    ("", "document"),
])
def test_sentinel2_product_metadata(tmp_path, content, field):
    safe = make_s2_safe(tmp_path, "L1C", product_xml=content)
    before = _files(tmp_path)
    with pytest.raises(MetadataError) as err:
        Sentinel2Reader().open(safe)
    assert err.value.field == field
    assert "MTD_MSIL1C.xml" in str(err.value)
    assert _files(tmp_path) == before  # nothing written


def test_hostile_xml_inside_a_zip_names_the_member(tmp_path):
    safe = make_s2_safe(tmp_path, "L1C", product_xml=BILLION_LAUGHS)
    archive = zip_folder(safe)
    with pytest.raises(MetadataError) as err:
        Sentinel2Reader().open(archive)
    assert f"{archive}!{safe.name}/MTD_MSIL1C.xml" in str(err.value)


def test_entities_without_doctype_are_refused_anyway():
    # Belt and braces: even when DTDs were allowed, defusedxml refuses entity declarations.
    import defusedxml
    import defusedxml.ElementTree as safe_et
    with pytest.raises(defusedxml.EntitiesForbidden):
        safe_et.fromstring(BILLION_LAUGHS, forbid_dtd=False)
    with pytest.raises(MetadataError):
        parse_xml(EXTERNAL_ENTITY.encode(), "x.xml")


@pytest.mark.parametrize("which", ["manifest.safe", "annotation"])
@pytest.mark.parametrize("content", [BILLION_LAUGHS, EXTERNAL_ENTITY, "<product><adsHeader><missionId>S1A"])
def test_sentinel1_manifest_and_annotation(tmp_path, which, content):
    safe = make_s1_safe(tmp_path)
    target = safe / "manifest.safe" if which == "manifest.safe" else next((safe / "annotation").glob("*vv*.xml"))
    target.write_text(content)
    with pytest.raises(MetadataError) as err:
        Sentinel1Reader().open(safe)
    assert target.name in str(err.value) and err.value.field in ("DOCTYPE", "document")


def test_missing_metadata_file(tmp_path):
    safe = make_s2_safe(tmp_path, "L2A")
    (safe / "MTD_MSIL2A.xml").unlink()
    with pytest.raises(MetadataError) as err:
        Sentinel2Reader().open(safe)
    assert err.value.field == "MTD_MSIL1C.xml" or "MTD_MSIL2A" in str(err.value)
    s1 = make_s1_safe(tmp_path / "s1")
    for annotation in (s1 / "annotation").glob("*.xml"):
        annotation.unlink()
    with pytest.raises(MetadataError) as err:
        Sentinel1Reader().open(s1)
    assert err.value.field == "annotation"
