"""The quick-look and thumbnail files of a month: deterministic PNGs, written atomically."""

from gvfuse.publish.quicklook import write_quicklooks
from gvfuse.testing.products import synthetic_monthly_product


def test_quicklook_and_thumbnail_are_deterministic_pngs_without_software_or_date(tmp_path):
    product = synthetic_monthly_product()
    first = write_quicklooks(product, tmp_path / "q1.png", tmp_path / "t1.png")
    second = write_quicklooks(synthetic_monthly_product(), tmp_path / "q2.png", tmp_path / "t2.png")
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()
    for path in first:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and b"Software" not in data and b"tIME" not in data
