"""``gvfuse netcdf CATALOG_DIR OUTPUT``: a publication's time cube as one netCDF-4 file."""

from __future__ import annotations

from pathlib import Path

import click

from gvfuse.cli.common import Command, echo_json


@click.command("netcdf", cls=Command)
@click.argument("catalog_dir", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def netcdf_command(catalog_dir: Path, output: Path, force: bool, as_json: bool) -> None:
    """Write the CF-1.10 time cube of a publication (its cube.zarr) as one netCDF-4 file.

    The same variables, attributes and values as the Zarr cube, for tools that
    read netCDF only. Needs h5netcdf (pip install 'gvfuse[netcdf]').
    """
    from gvfuse.errors import InputError
    from gvfuse.publish.cube import export_netcdf

    if not catalog_dir.is_dir():
        raise InputError("does not exist" if not catalog_dir.exists() else "is not a folder", source=catalog_dir)
    written = export_netcdf(catalog_dir, output, overwrite=force)
    if as_json:
        echo_json({"netcdf": str(written), "bytes": written.stat().st_size})
    else:
        click.echo(f"wrote {written}")
