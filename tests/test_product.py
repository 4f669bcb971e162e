import pytest

from gvfuse.errors import ConfigError
from gvfuse.product import load_product, product_from_dict


def test_gangrigab_definition_matches_the_reference_product():
    p = load_product("gangrigab-2023")
    assert p.crs == "EPSG:32647" and p.resolution_m == 30
    assert tuple(map(str, p.months)) == tuple(f"2023-{m:02d}" for m in range(1, 13))
    assert p.license == "CC-BY-4.0"
    assert (p.area.west_deg, p.area.east_deg) == pytest.approx((96 + 20 / 60, 97.0))
    assert (p.area.south_deg, p.area.north_deg) == (29.0, 29.5)
    g = p.grid()
    # 0.5 deg of latitude is ~55 km, 0.67 deg of longitude at 29 N is ~65 km; UTM 47N is skewed here.
    assert 1800 <= g.rows <= 1950 and 2100 <= g.cols <= 2250
    assert g.pixel_size_m == (30.0, 30.0)


def test_months_cross_year_boundary():
    raw = {"id": "x", "title": "t", "description": "d", "license": "CC0-1.0",
           "area": {"west_deg": 1, "south_deg": 1, "east_deg": 2, "north_deg": 2},
           "grid": {"crs": "EPSG:32631", "resolution_m": 30},
           "time": {"first_month": "2022-11", "last_month": "2023-02"}}
    assert [str(m) for m in product_from_dict(raw).months] == ["2022-11", "2022-12", "2023-01", "2023-02"]


def test_bad_definition_names_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\ntitle = "t"\ndescription = "d"\nlicense = "l"\n'
                   '[area]\nwest_deg = 5\nsouth_deg = 1\neast_deg = 2\nnorth_deg = 2\n')
    with pytest.raises(ConfigError, match=r"bad.toml \[area\]"):
        load_product(bad)
    with pytest.raises(ConfigError, match="bundled ones: gangrigab-2023"):
        load_product(tmp_path / "missing.toml")
    bad.write_text("id = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_product(bad)
