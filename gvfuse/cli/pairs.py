"""``gvfuse pairs CONFIG``: the pair plan of a run configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gvfuse.cli.common import Command, echo_json, plugin_set

if TYPE_CHECKING:
    from gvfuse.model import Grid
    from gvfuse.pipeline.run import RunPlan


def _time(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def _grid(grid: Grid | None) -> dict[str, Any] | None:
    return None if grid is None else {"rows": grid.shape[0], "cols": grid.shape[1],
                                      "resolution_m": grid.pixel_size_m[0], "bounds": list(grid.bounds)}


def plan_to_dict(plan: RunPlan) -> dict[str, Any]:
    """The plan as ``gvfuse pairs --json`` prints it (the shape is documented in docs/cli.md)."""
    rows, cols = plan.product_grid.shape
    product = plan.config.product
    return {
        "product": product.id,
        "grid": {"rows": rows, "cols": cols, "resolution_m": product.resolution_m, "crs": str(product.crs)},
        "scenes": {sensor: len(scenes) for sensor, scenes in sorted(plan.scenes.items())},
        "months": [
            {
                "month": str(mp.month),
                "sensor": mp.sensor,
                "published": mp.month in plan.config.months,
                "note": mp.note or None,
                "pairs": [{"pair_id": p.pair_id, "reference": p.reference.scene_id,
                           "secondary": p.secondary.scene_id, "reference_time": _time(p.reference.acquired_at),
                           "secondary_time": _time(p.secondary.acquired_at), "dt_days": p.dt_days,
                           "tracking_grid": _grid(plan.tracking_grid_of(p.pair_id))}
                          for p in mp.pairs],
            }
            for mp in plan.months
        ],
        "pairs_to_track": len(plan.jobs),
        "problems": list(plan.problems),
    }


@click.command("pairs", cls=Command)
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def pairs_command(config_path: Path, as_json: bool) -> None:
    """Print the pair plan of a run configuration: scenes, pairs per sensor and month, problems."""
    from gvfuse.config import load_config
    from gvfuse.pipeline.run import build_plan

    plugins = plugin_set()
    plan = build_plan(load_config(config_path, plugins), plugins)
    if as_json:
        echo_json(plan_to_dict(plan))
    else:
        click.echo(plan.describe())
