"""Scene builders for the reader tests: tiny scenes laid out exactly as the providers ship them.

Folder structures and file names follow the providers (Landsat C2L1 folder and
``.tar``; Sentinel-2 L1C/L2A ``.SAFE`` and ``.zip``; Sentinel-1 GRD ``.SAFE``).
The metadata templates below keep the real element names, nesting and value
formats of the provider samples in ``../shared/data/metadata-samples/`` (read
from there by ``test_real_samples.py``), filled with our own values, so these
fixtures work without ``../shared``. Rasters are small (≤ 300 × 300) and placed
in the Gangrigab product area (UTM 47N).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tarfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SAMPLES = SHARED / "data" / "metadata-samples"

UTM47 = "EPSG:32647"
#: Upper-left corner of every fixture raster: inside the Gangrigab area (≈ 96.5° E, 29.3° N).
ORIGIN_X, ORIGIN_Y = 255000.0, 3245000.0


def textured(rows: int, cols: int, seed: int, low: int = 1000, high: int = 9000) -> np.ndarray:
    """A smooth random texture as uint16 DNs (never 0, the fill value)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((rows, cols))
    for _ in range(3):
        noise = (noise + np.roll(noise, 1, 0) + np.roll(noise, 1, 1)) / 3
    noise = (noise - noise.min()) / (np.ptp(noise) or 1)
    return (low + noise * (high - low)).astype("uint16")


def write_raster(path: Path, data: np.ndarray, transform: Affine, crs: str = UTM47, driver: str = "GTiff",
                 nodata: float | None = None, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if driver == "JP2OpenJPEG":
        options.update(QUALITY=100, REVERSIBLE="YES")  # lossless, like ESA's band files
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver=driver, width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, **options) as dst:
        dst.write(data)


# --------------------------------------------------------------------------- Landsat


LANDSAT_ID = "LC09_L1TP_135040_20230115_20230116_02_T1"
LANDSAT_PAN_SHAPE = (200, 200)  # 15 m: 3 km
LANDSAT_QA_SHAPE = (100, 100)  # 30 m


def landsat_groups(product_id: str = LANDSAT_ID, *, cloud: str = "12.34", origin=(ORIGIN_X, ORIGIN_Y),
                   zone: int = 47) -> dict[str, dict[str, str]]:
    """MTL groups of a C2L1 scene (field names and formats of LSDS-1822 / the real MTL samples)."""
    parts = product_id.split("_")
    pan_rows, pan_cols = LANDSAT_PAN_SHAPE
    ulx, uly = origin[0] + 7.5, origin[1] - 7.5  # MTL corners are pixel centres
    lrx, lry = ulx + (pan_cols - 1) * 15, uly - (pan_rows - 1) * 15
    date = dt.datetime.strptime(parts[3], "%Y%m%d").date().isoformat()
    files = {f"FILE_NAME_BAND_{b}": f"{product_id}_B{b}.TIF" for b in range(1, 12)}
    return {
        "PRODUCT_CONTENTS": {
            "ORIGIN": "Image courtesy of the U.S. Geological Survey",
            "DIGITAL_OBJECT_IDENTIFIER": "https://doi.org/10.5066/P975CC9B",
            "LANDSAT_PRODUCT_ID": product_id, "PROCESSING_LEVEL": parts[1], "COLLECTION_NUMBER": "02",
            "COLLECTION_CATEGORY": parts[6], "OUTPUT_FORMAT": "GEOTIFF", **files,
            "FILE_NAME_QUALITY_L1_PIXEL": f"{product_id}_QA_PIXEL.TIF",
            "FILE_NAME_METADATA_ODL": f"{product_id}_MTL.txt", "FILE_NAME_METADATA_XML": f"{product_id}_MTL.xml",
            "DATA_TYPE_BAND_8": "UINT16", "DATA_TYPE_QUALITY_L1_PIXEL": "UINT16",
        },
        "IMAGE_ATTRIBUTES": {
            "SPACECRAFT_ID": f"LANDSAT_{int(parts[0][2:])}", "SENSOR_ID": "OLI_TIRS", "WRS_TYPE": "2",
            "WRS_PATH": str(int(parts[2][:3])), "WRS_ROW": str(int(parts[2][3:])), "NADIR_OFFNADIR": "NADIR",
            "DATE_ACQUIRED": date, "SCENE_CENTER_TIME": "04:21:33.1234560Z", "STATION_ID": "LGN",
            "CLOUD_COVER": cloud, "CLOUD_COVER_LAND": cloud, "IMAGE_QUALITY_OLI": "9",
        },
        "PROJECTION_ATTRIBUTES": {
            "MAP_PROJECTION": "UTM", "DATUM": "WGS84", "ELLIPSOID": "WGS84", "UTM_ZONE": str(zone),
            "GRID_CELL_SIZE_PANCHROMATIC": "15.00", "GRID_CELL_SIZE_REFLECTIVE": "30.00",
            "GRID_CELL_SIZE_THERMAL": "30.00", "PANCHROMATIC_LINES": str(pan_rows),
            "PANCHROMATIC_SAMPLES": str(pan_cols), "REFLECTIVE_LINES": str(pan_rows // 2),
            "REFLECTIVE_SAMPLES": str(pan_cols // 2), "ORIENTATION": "NORTH_UP",
            "CORNER_UL_LAT_PRODUCT": "29.33000", "CORNER_UL_LON_PRODUCT": "96.48000",
            "CORNER_UR_LAT_PRODUCT": "29.33100", "CORNER_UR_LON_PRODUCT": "96.51000",
            "CORNER_LL_LAT_PRODUCT": "29.30300", "CORNER_LL_LON_PRODUCT": "96.48100",
            "CORNER_LR_LAT_PRODUCT": "29.30400", "CORNER_LR_LON_PRODUCT": "96.51100",
            "CORNER_UL_PROJECTION_X_PRODUCT": f"{ulx:.3f}", "CORNER_UL_PROJECTION_Y_PRODUCT": f"{uly:.3f}",
            "CORNER_UR_PROJECTION_X_PRODUCT": f"{lrx:.3f}", "CORNER_UR_PROJECTION_Y_PRODUCT": f"{uly:.3f}",
            "CORNER_LL_PROJECTION_X_PRODUCT": f"{ulx:.3f}", "CORNER_LL_PROJECTION_Y_PRODUCT": f"{lry:.3f}",
            "CORNER_LR_PROJECTION_X_PRODUCT": f"{lrx:.3f}", "CORNER_LR_PROJECTION_Y_PRODUCT": f"{lry:.3f}",
        },
        "LEVEL1_PROCESSING_RECORD": {
            "LANDSAT_PRODUCT_ID": product_id, "PROCESSING_LEVEL": parts[1],
            "DATE_PRODUCT_GENERATED": "2023-01-16T08:00:00Z", "PROCESSING_SOFTWARE_VERSION": "LPGS_16.2.0",
        },
    }


# Values that are bare (unquoted) in the ODL flavour, as in the real MTL.txt.
_ODL_BARE = {"COLLECTION_NUMBER", "WRS_TYPE", "WRS_PATH", "WRS_ROW", "DATE_ACQUIRED", "CLOUD_COVER",
             "CLOUD_COVER_LAND", "IMAGE_QUALITY_OLI", "UTM_ZONE", "DATE_PRODUCT_GENERATED"}


def mtl_odl(groups: Mapping[str, Mapping[str, str]]) -> str:
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for group, items in groups.items():
        lines.append(f"  GROUP = {group}")
        for key, value in items.items():
            bare = key in _ODL_BARE or key.startswith(("GRID_CELL", "PANCHROMATIC_", "REFLECTIVE_", "CORNER_"))
            lines.append(f"    {key} = {value}" if bare else f'    {key} = "{value}"')
        lines.append(f"  END_GROUP = {group}")
    lines += ["END_GROUP = LANDSAT_METADATA_FILE", "END", ""]
    return "\n".join(lines)


def mtl_json(groups: Mapping[str, Mapping[str, str]]) -> str:
    # USGS quirk reproduced: every value a string, blanks removed inside ORIGIN.
    tree = {"LANDSAT_METADATA_FILE": {g: {k: (v.replace(" ", "") if k == "ORIGIN" else v) for k, v in items.items()}
                                      for g, items in groups.items()}}
    return json.dumps(tree, indent=4)


def mtl_xml(groups: Mapping[str, Mapping[str, str]]) -> str:
    body = "".join(f"  <{g}>\n" + "".join(f"    <{k}>{v}</{k}>\n" for k, v in items.items()) + f"  </{g}>\n"
                   for g, items in groups.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<LANDSAT_METADATA_FILE>\n{body}</LANDSAT_METADATA_FILE>\n'


def make_landsat_folder(root: Path, product_id: str = LANDSAT_ID, flavour: str = "txt",
                        groups: dict | None = None) -> Path:
    """A USGS C2L1 scene folder: ``<id>_MTL.<flavour>``, ``<id>_B8.TIF`` (15 m), ``<id>_QA_PIXEL.TIF`` (30 m).

    QA_PIXEL marks a cloud block (bit 3) at rows 0-19, cols 0-19 (30 m pixels)
    and a cloud shadow (bit 4) at rows 40-49, cols 60-79; the rest is clear (bit 6).
    """
    folder = root / product_id
    folder.mkdir(parents=True)
    groups = groups or landsat_groups(product_id)
    writer = {"txt": mtl_odl, "json": mtl_json, "xml": mtl_xml}[flavour]
    (folder / f"{product_id}_MTL.{flavour}").write_text(writer(groups), encoding="utf-8")
    write_raster(folder / f"{product_id}_B8.TIF", textured(*LANDSAT_PAN_SHAPE, seed=8),
                 Affine(15, 0, ORIGIN_X, 0, -15, ORIGIN_Y), tiled=True, blockxsize=64, blockysize=64)
    qa = np.full(LANDSAT_QA_SHAPE, 1 << 6, dtype="uint16")
    qa[0:20, 0:20] = (1 << 3) | (1 << 1) | (3 << 8)
    qa[40:50, 60:80] = (1 << 4) | (3 << 10)
    write_raster(folder / f"{product_id}_QA_PIXEL.TIF", qa, Affine(30, 0, ORIGIN_X, 0, -30, ORIGIN_Y))
    return folder


def make_landsat_tar(root: Path, product_id: str = LANDSAT_ID, flavour: str = "txt") -> Path:
    """The USGS bundle: ``<id>.tar`` with the scene's files at the archive root."""
    folder = make_landsat_folder(root / "build", product_id, flavour)
    tar_path = root / f"{product_id}.tar"
    with tarfile.open(tar_path, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.add(file, arcname=file.name)
    shutil.rmtree(root / "build")
    return tar_path


# --------------------------------------------------------------------------- Sentinel-2

S2_L1C = "S2B_MSIL1C_20230715T043709_N0509_R033_T47RLQ_20230715T062530"
S2_L2A = "S2B_MSIL2A_20230715T043709_N0509_R033_T47RLQ_20230715T075845"
S2_SHAPE = (300, 300)  # 10 m: 3 km
S2_SCL_SHAPE = (150, 150)  # 20 m


def s2_product_xml(level: str, product: str, *, baseline: str = "05.09", cloud: str = "7.5", offset: int | None = -1000,
                   start: str = "2023-07-15T04:37:09.024Z") -> str:
    """``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` with the real element names and nesting (PSD 14.x)."""
    granule = f"GRANULE/{level}_T47RLQ_A033333_20230715T044000/IMG_DATA/"
    tile_time = "T47RLQ_20230715T043709"
    if level == "L2A":
        root, xsd = "Level-2A_User_Product", "User_Product_Level-2A.xsd"
        files = "".join(f"<IMAGE_FILE>{granule}R10m/{tile_time}_{b}_10m</IMAGE_FILE>" for b in ("B02", "B03", "B04", "B08"))
        files += f"<IMAGE_FILE>{granule}R20m/{tile_time}_SCL_20m</IMAGE_FILE>"
        quant = ('<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>'
                 '<AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>')
        offsets = ("<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(
            f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13))
            + "</BOA_ADD_OFFSET_VALUES_LIST>") if offset is not None else ""
    else:
        root, xsd = "Level-1C_User_Product", "User_Product_Level-1C.xsd"
        files = "".join(f"<IMAGE_FILE>{granule}{tile_time}_{b}</IMAGE_FILE>" for b in ("B02", "B03", "B04", "B08", "B8A"))
        quant = '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        offsets = ("<Radiometric_Offset_List>" + "".join(
            f'<RADIO_ADD_OFFSET band_id="{i}">{offset}</RADIO_ADD_OFFSET>' for i in range(13))
            + "</Radiometric_Offset_List>") if offset is not None else ""
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:{root} xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/{xsd}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <n1:General_Info>
        <Product_Info>
            <PRODUCT_START_TIME>{start}</PRODUCT_START_TIME>
            <PRODUCT_STOP_TIME>{start}</PRODUCT_STOP_TIME>
            <PRODUCT_URI>{product}.SAFE</PRODUCT_URI>
            <PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>
            <PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>
            <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
            <GENERATION_TIME>2023-07-15T06:25:30.000000Z</GENERATION_TIME>
            <Datatake datatakeIdentifier="GS2B_20230715T043709_033333_N{baseline}">
                <SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
                <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
                <DATATAKE_SENSING_START>{start}</DATATAKE_SENSING_START>
                <SENSING_ORBIT_NUMBER>33</SENSING_ORBIT_NUMBER>
                <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
            </Datatake>
            <Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>
            <Product_Organisation><Granule_List><Granule imageFormat="JPEG2000">{files}</Granule></Granule_List></Product_Organisation>
        </Product_Info>
        <Product_Image_Characteristics>
            <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
            <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
            {quant}
            {offsets}
        </Product_Image_Characteristics>
    </n1:General_Info>
    <n1:Geometric_Info>
        <Product_Footprint><Product_Footprint><Global_Footprint>
            <EXT_POS_LIST>29.330 96.480 29.331 96.511 29.303 96.511 29.302 96.481 29.330 96.480 </EXT_POS_LIST>
        </Global_Footprint></Product_Footprint></Product_Footprint>
    </n1:Geometric_Info>
    <n1:Quality_Indicators_Info>
        <Cloud_Coverage_Assessment>{cloud}</Cloud_Coverage_Assessment>
    </n1:Quality_Indicators_Info>
</n1:{root}>
"""


def s2_tile_xml(level: str, epsg: int = 32647, origin=(ORIGIN_X, ORIGIN_Y)) -> str:
    """``MTD_TL.xml`` Tile_Geocoding as in the real tile files (sizes here are the fixture's)."""
    sizes = "".join(f'<Size resolution="{r}"><NROWS>{S2_SHAPE[0] * 10 // r}</NROWS><NCOLS>{S2_SHAPE[1] * 10 // r}</NCOLS></Size>'
                    for r in (10, 20, 60))
    positions = "".join(f'<Geoposition resolution="{r}"><ULX>{origin[0]:.0f}</ULX><ULY>{origin[1]:.0f}</ULY>'
                        f"<XDIM>{r}</XDIM><YDIM>-{r}</YDIM></Geoposition>" for r in (10, 20, 60))
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{level[1:]}_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level[1:]}_Tile_Metadata.xsd">
  <n1:General_Info>
    <TILE_ID metadataLevel="Brief">S2B_OPER_MSI_{level}_TL_2BPS_20230715T062530_A033333_T47RLQ_N05.09</TILE_ID>
    <SENSING_TIME metadataLevel="Standard">2023-07-15T04:40:00.123456Z</SENSING_TIME>
  </n1:General_Info>
  <n1:Geometric_Info>
    <Tile_Geocoding metadataLevel="Brief">
      <HORIZONTAL_CS_NAME>WGS84 / UTM zone {epsg - 32600}N</HORIZONTAL_CS_NAME>
      <HORIZONTAL_CS_CODE>EPSG:{epsg}</HORIZONTAL_CS_CODE>
      {sizes}{positions}
    </Tile_Geocoding>
  </n1:Geometric_Info>
</n1:Level-{level[1:]}_Tile_ID>
"""


def s2_manifest(level: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<xfdu:XFDU xmlns:gml="http://www.opengis.net/gml" xmlns:safe="http://www.esa.int/safe/sentinel/1.1" xmlns:xfdu="urn:ccsds:schema:xfdu:1" version="esa/safe/sentinel/1.1/sentinel-2/msi/archive_l{level[1:].lower()}_user_product">
  <informationPackageMap><xfdu:contentUnit unitType="Product_Level-{level[1:]}"/></informationPackageMap>
  <metadataSection>
    <metadataObject ID="acquisitionPeriod"><metadataWrap><xmlData><safe:acquisitionPeriod><safe:startTime>2023-07-15T04:37:09.024Z</safe:startTime></safe:acquisitionPeriod></xmlData></metadataWrap></metadataObject>
    <metadataObject ID="platform"><metadataWrap><xmlData><safe:platform><safe:familyName>SENTINEL</safe:familyName><safe:number>2B</safe:number></safe:platform></xmlData></metadataWrap></metadataObject>
  </metadataSection>
  <dataObjectSection>
    <dataObject ID="S2_Level-{level[1:]}_Product_Metadata"><byteStream><fileLocation href="./MTD_MSI{level}.xml" locatorType="URL"/></byteStream></dataObject>
  </dataObjectSection>
</xfdu:XFDU>
"""


def s2_scl() -> np.ndarray:
    """SCL at 20 m: vegetation (4) and snow/ice (11, must stay), cloud high (9) at rows 0-24 cols 0-24,
    cloud shadow (3) at rows 50-59 cols 100-119, thin cirrus (10) at rows 100-109 cols 0-9."""
    scl = np.full(S2_SCL_SHAPE, 4, dtype="uint8")
    scl[:, 75:] = 11
    scl[0:25, 0:25] = 9
    scl[50:60, 100:120] = 3
    scl[100:110, 0:10] = 10
    return scl


def make_s2_safe(root: Path, level: str = "L1C", product: str | None = None, *, product_xml: str | None = None,
                 baseline: str = "05.09", offset: int | None = -1000) -> Path:
    """A single-tile ``.SAFE`` folder with manifest, product and tile metadata, band 8 JP2 (and SCL for L2A)."""
    product = product or (S2_L1C if level == "L1C" else S2_L2A)
    safe = root / f"{product}.SAFE"
    granule = safe / "GRANULE" / f"{level}_T47RLQ_A033333_20230715T044000"
    (granule / "IMG_DATA").mkdir(parents=True)
    (safe / "manifest.safe").write_text(s2_manifest(level), encoding="utf-8")
    (safe / f"MTD_MSI{level}.xml").write_text(
        product_xml if product_xml is not None else s2_product_xml(level, product, baseline=baseline, offset=offset),
        encoding="utf-8")
    (granule / "MTD_TL.xml").write_text(s2_tile_xml(level), encoding="utf-8")
    tile_time = "T47RLQ_20230715T043709"
    dn = textured(*S2_SHAPE, seed=2)
    dn[-5:, -5:] = 0  # NODATA corner
    transform10 = Affine(10, 0, ORIGIN_X, 0, -10, ORIGIN_Y)
    if level == "L2A":
        write_raster(granule / "IMG_DATA" / "R10m" / f"{tile_time}_B08_10m.jp2", dn, transform10, driver="JP2OpenJPEG")
        write_raster(granule / "IMG_DATA" / "R20m" / f"{tile_time}_SCL_20m.jp2", s2_scl(),
                     Affine(20, 0, ORIGIN_X, 0, -20, ORIGIN_Y), driver="JP2OpenJPEG")
    else:
        write_raster(granule / "IMG_DATA" / f"{tile_time}_B08.jp2", dn, transform10, driver="JP2OpenJPEG")
    return safe


def zip_folder(folder: Path, zip_path: Path | None = None) -> Path:
    """Zip a SAFE folder the way the Copernicus hubs do: the ``X.SAFE/`` folder at the archive root."""
    zip_path = zip_path or folder.parent / (folder.name.removesuffix(".SAFE") + ".zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, arcname=f"{folder.name}/{file.relative_to(folder).as_posix()}")
    return zip_path


# --------------------------------------------------------------------------- Sentinel-1

S1_PRODUCT = "S1A_IW_GRDH_1SDV_20230105T234512_20230105T234537_046642_059735_1A2B"
S1_SHAPE = (120, 100)  # lines, samples
S1_FILE_STEM = "s1a-iw-grd-{pol}-20230105t234512-20230105t234537-046642-059735-{n}"


def s1_lonlat(row: np.ndarray | float, col: np.ndarray | float) -> tuple:
    """The fixture's radar geometry: an ascending, slightly rotated swath over the product area.

    Lines run north (azimuth), samples east (range); ~90 m per line, ~100 m per sample.
    """
    lon = 96.45 + 0.00103 * np.asarray(col) + 0.00012 * np.asarray(row)
    lat = 29.20 + 0.00081 * np.asarray(row) - 0.00008 * np.asarray(col)
    return lon, lat


def s1_gcps() -> list[GroundControlPoint]:
    gcps = []
    for line in range(0, S1_SHAPE[0] + 1, 20):
        for pixel in range(0, S1_SHAPE[1] + 1, 20):
            lon, lat = s1_lonlat(line, pixel)
            gcps.append(GroundControlPoint(row=line, col=pixel, x=float(lon), y=float(lat), z=3000.0))
    return gcps


def s1_manifest(product: str = S1_PRODUCT, pass_direction: str = "ASCENDING") -> str:
    """``manifest.safe`` with the real XFDU element names (platform, orbitReference, s1sarl1 standAloneProductInformation)."""
    files = "".join(
        f'<dataObject ID="{kind}{n}"><byteStream><fileLocation locatorType="URL" href="./{folder}/{S1_FILE_STEM.format(pol=pol, n=n)}{ext}"/></byteStream></dataObject>'
        for n, pol in (("002", "vh"), ("001", "vv"))
        for kind, folder, ext in (("product", "annotation", ".xml"), ("s1Level1Measurement", "measurement", ".tiff")))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" xmlns:gml="http://www.opengis.net/gml" version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/standard/iwdp">
  <metadataSection>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD"><metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description"><xmlData>
      <safe:platform>
        <safe:nssdcIdentifier>2014-016A</safe:nssdcIdentifier>
        <safe:familyName>SENTINEL-1</safe:familyName>
        <safe:number>A</safe:number>
        <safe:instrument><safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
          <safe:extension><s1sarl1:instrumentMode><s1sarl1:mode>IW</s1sarl1:mode><s1sarl1:swath>IW</s1sarl1:swath></s1sarl1:instrumentMode></safe:extension>
        </safe:instrument>
      </safe:platform></xmlData></metadataWrap></metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD"><metadataWrap><xmlData>
      <safe:orbitReference>
        <safe:orbitNumber type="start">46642</safe:orbitNumber>
        <safe:orbitNumber type="stop">46642</safe:orbitNumber>
        <safe:relativeOrbitNumber type="start">20</safe:relativeOrbitNumber>
        <safe:relativeOrbitNumber type="stop">20</safe:relativeOrbitNumber>
        <safe:cycleNumber>280</safe:cycleNumber>
        <safe:extension><s1:orbitProperties><s1:pass>{pass_direction}</s1:pass></s1:orbitProperties></safe:extension>
      </safe:orbitReference></xmlData></metadataWrap></metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD"><metadataWrap><xmlData>
      <s1sarl1:standAloneProductInformation>
        <s1sarl1:productConsolidation>SLICE</s1sarl1:productConsolidation>
        <s1sarl1:instrumentConfigurationID>7</s1sarl1:instrumentConfigurationID>
        <s1sarl1:missionDataTakeID>366389</s1sarl1:missionDataTakeID>
        <s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>
        <s1sarl1:transmitterReceiverPolarisation>VH</s1sarl1:transmitterReceiverPolarisation>
        <s1sarl1:productClass>S</s1sarl1:productClass>
        <s1sarl1:productType>GRD</s1sarl1:productType>
      </s1sarl1:standAloneProductInformation></xmlData></metadataWrap></metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD"><metadataWrap><xmlData>
      <safe:acquisitionPeriod><safe:startTime>2023-01-05T23:45:12.345678</safe:startTime><safe:stopTime>2023-01-05T23:45:37.345000</safe:stopTime></safe:acquisitionPeriod>
    </xmlData></metadataWrap></metadataObject>
    <metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD"><metadataWrap><xmlData>
      <safe:frameSet><safe:frame><safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">
        <gml:coordinates>29.200000,96.450000 29.297200,96.464400 29.289200,96.567400 29.192000,96.553000</gml:coordinates>
      </safe:footPrint></safe:frame></safe:frameSet>
    </xmlData></metadataWrap></metadataObject>
  </metadataSection>
  <dataObjectSection>{files}</dataObjectSection>
</xfdu:XFDU>
"""


def s1_annotation(pol: str) -> str:
    """A product annotation with the real adsHeader/productInformation/imageInformation elements."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<product>
  <adsHeader>
    <missionId>S1A</missionId><productType>GRD</productType><polarisation>{pol}</polarisation><mode>IW</mode>
    <swath>IW</swath><startTime>2023-01-05T23:45:12.345678</startTime><stopTime>2023-01-05T23:45:37.345000</stopTime>
    <absoluteOrbitNumber>46642</absoluteOrbitNumber><missionDataTakeId>366389</missionDataTakeId><imageNumber>001</imageNumber>
  </adsHeader>
  <generalAnnotation><productInformation><pass>Ascending</pass><timelinessCategory>Fast-24h</timelinessCategory>
    <projection>Ground Range</projection></productInformation></generalAnnotation>
  <imageAnnotation><imageInformation>
    <rangePixelSpacing>1.000000e+01</rangePixelSpacing><azimuthPixelSpacing>1.000000e+01</azimuthPixelSpacing>
    <numberOfSamples>{S1_SHAPE[1]}</numberOfSamples><numberOfLines>{S1_SHAPE[0]}</numberOfLines>
  </imageInformation></imageAnnotation>
</product>
"""


S1_MARKER = (60, 40)  # (line, sample) of the bright marker in the measurement image


def make_s1_safe(root: Path, product: str = S1_PRODUCT) -> Path:
    """A GRD IW SAFE: manifest, VV/VH annotations (+ calibration folder), measurement TIFFs with GCPs."""
    safe = root / f"{product}.SAFE"
    (safe / "annotation" / "calibration").mkdir(parents=True)
    (safe / "measurement").mkdir()
    (safe / "manifest.safe").write_text(s1_manifest(product), encoding="utf-8")
    stem = S1_FILE_STEM
    for n, pol in (("001", "vv"), ("002", "vh")):
        name = stem.format(pol=pol, n=n)
        (safe / "annotation" / f"{name}.xml").write_text(s1_annotation(pol.upper()), encoding="utf-8")
        (safe / "annotation" / "calibration" / f"calibration-{name}.xml").write_text(
            "<?xml version='1.0'?><calibration><adsHeader><polarisation>" + pol.upper()
            + "</polarisation></adsHeader></calibration>", encoding="utf-8")
        image = (textured(*S1_SHAPE, seed=11, low=50, high=400)).astype("uint16")
        image[:, :3] = 0  # no-data border, as in real GRD near range
        image[S1_MARKER] = 4000
        with warnings.catch_warnings():  # no geotransform until the GCPs are set: expected
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(safe / "measurement" / f"{name}.tiff", "w", driver="GTiff", width=S1_SHAPE[1],
                               height=S1_SHAPE[0], count=1, dtype="uint16") as dst:
                dst.write(image, 1)
                dst.gcps = (s1_gcps(), rasterio.crs.CRS.from_epsg(4326))
    return safe


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<n1:Level-1C_User_Product xmlns:n1="x"><PRODUCT_START_TIME>&lol9;</PRODUCT_START_TIME></n1:Level-1C_User_Product>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<n1:Level-1C_User_Product xmlns:n1="x"><PRODUCT_START_TIME>&xxe;</PRODUCT_START_TIME></n1:Level-1C_User_Product>
"""
