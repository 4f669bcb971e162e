"""``gvfuse check CATALOG_DIR``: every published file (each of the cube's too) matches its STAC size and
checksum, and the indexes agree."""

from __future__ import annotations

from pathlib import Path

import click

from gvfuse.cli.common import Command, echo_json


@click.command("check", cls=Command)
@click.argument("catalog_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--schemas", "schema_dir", type=click.Path(path_type=Path),
              default=None, help="Also validate the STAC JSON offline against the extension schemas in DIR.")
@click.pass_context
def check_command(ctx: click.Context, catalog_dir: Path, as_json: bool, schema_dir: Path | None) -> None:
    """Verify a published catalog: every asset exists with its recorded size and checksum.

    Also: every file of cube.zarr matches the size and checksum the
    collection records for it, and none is missing or added; every item in
    items/ is linked from collection.json, catalog.yaml lists every item and
    names existing files, and no link or href leaves CATALOG_DIR. Exits with
    status 1 when anything is missing or changed.
    """
    import attrs

    from gvfuse.errors import GvfuseError, InputError
    from gvfuse.publish.check import Problem, verify

    for folder, where in ((catalog_dir, None), (schema_dir, "--schemas")):
        if folder is not None and not folder.is_dir():  # bad input, status 1 as everywhere (docs/cli.md)
            raise InputError("does not exist" if not folder.exists() else "is not a folder", source=folder,
                             field=where)
    report = verify(catalog_dir)
    if schema_dir is not None:
        from gvfuse.publish.stac_validation import validate_catalog

        try:
            schema_problems = [Problem("schema", message) for message in validate_catalog(catalog_dir, schema_dir)]
        except GvfuseError as exc:  # malformed or escaping JSON: already a problem of the report
            schema_problems = [Problem("schema", f"not validated: {exc}")]
        report = attrs.evolve(report, problems=report.problems + tuple(schema_problems))
    if as_json:
        echo_json(report.to_dict())
    else:
        for problem in report.problems:
            click.echo(str(problem))
        status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        click.echo(f"{report.items_checked} item(s), {report.assets_checked} asset(s) checked: {status}")
    if not report.ok:
        ctx.exit(1)
