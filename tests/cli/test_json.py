"""``--json`` on every reporting command, the global -v/-q/--log-level, and the exit statuses (docs/cli.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from gvfuse.cli import COMMANDS, main
from tests.helpers.scenes import optical_pair_run

DT_DAYS = 29.0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One month, one optical pair of dated GeoTIFFs 29 days apart, a product and a run definition."""
    root = tmp_path_factory.mktemp("json")
    optical_pair_run(root, "json-test", shape=(128, 128), days=("20230101", "20230130"), seed=3,
                     extra='[validation]\nvalidators = ["stable-ground"]\n')
    return root


def invoke(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_pairs_json_is_the_plan(workspace):
    status, out, _ = invoke("pairs", workspace / "run.toml", "--json")
    assert status == 0
    plan = json.loads(out)
    assert set(plan) == {"product", "grid", "scenes", "months", "pairs_to_track", "problems"}
    assert plan["product"] == "json-test" and plan["scenes"] == {"optical": 2} and plan["pairs_to_track"] == 1
    assert set(plan["grid"]) == {"rows", "cols", "resolution_m", "crs"}
    [month] = plan["months"]
    assert month["month"] == "2023-01" and month["sensor"] == "optical" and month["published"] is True
    [pair] = month["pairs"]
    assert pair["dt_days"] == pytest.approx(DT_DAYS)
    assert pair["reference_time"].startswith("2023-01-01") and pair["reference_time"].endswith("Z")
    assert pair["pair_id"] == f"{pair['reference']}_X_{pair['secondary']}"
    assert set(pair["tracking_grid"]) == {"rows", "cols", "resolution_m", "bounds"}
    assert pair["tracking_grid"]["rows"] > 0 and pair["tracking_grid"]["cols"] > 0
    status, dry, _ = invoke("run", workspace / "run.toml", "--dry-run", "--json")
    assert status == 0 and json.loads(dry) == plan


def test_run_json_reports_months_pairs_and_problems_and_nothing_else_on_stdout(workspace):
    status, out, _ = invoke("run", workspace / "run.toml", "--workers", "0", "--json")
    assert status == 0, out
    first = json.loads(out)  # the whole of standard output is one document
    assert set(first) == {"months", "pairs", "problems", "failed_months"}
    [month] = first["months"]
    assert month["month"] == "2023-01" and month["error"] is None and month["files"]
    assert all(Path(f).exists() for f in month["files"])
    assert first["pairs"] == {"total": 1, "tracked": 1, "cached": 0, "failed": 0}
    assert first["failed_months"] == []
    status, out, _ = invoke("run", workspace / "run.toml", "--workers", "0", "--json")
    assert status == 0 and json.loads(out)["pairs"] == {"total": 1, "tracked": 0, "cached": 1, "failed": 0}


def test_track_json_names_the_output_the_tracker_and_the_baseline(workspace, tmp_path):
    out_path = tmp_path / "v.tif"
    status, out, _ = invoke("track", workspace / "scenes" / "optical_20230101.tif",
                            workspace / "scenes" / "optical_20230130.tif", "-o", out_path, "--tracker", "ncc",
                            "--step", "8", "--json")
    assert status == 0
    report = json.loads(out)
    assert set(report) == {"output", "tracker", "dt_days", "dt_source", "parameters", "stable_ground_correction",
                           "warnings"}
    assert report["output"] == str(out_path) and out_path.exists()
    assert report["tracker"] == "ncc" and report["dt_days"] == pytest.approx(DT_DAYS)
    assert report["parameters"]["step_px"] == 8
    assert report["stable_ground_correction"]["decision"] in ("applied", "skipped", "off")
    assert isinstance(report["warnings"], list)


def test_demo_json_carries_the_summary_rows(monkeypatch, tmp_path):
    """The demo's JSON is its report (the demo itself is exercised in tests/test_demo.py)."""
    import gvfuse.demo
    import gvfuse.pipeline.run
    from gvfuse.model import Month

    rows = [{"month": "2023-06", "fused_rmse_m_per_day": 0.05}, {"month": "2023-07", "error": "no pairs"}]

    def fake_run_demo(folder, size, **kwargs):
        return gvfuse.demo.DemoReport(folder=folder, rows=rows, table="", seconds={"tracking": 1.5},
                                      problems=["month 2023-07: no pairs"], failed_months=[Month.parse("2023-07")])

    monkeypatch.setattr(gvfuse.demo, "run_demo", fake_run_demo)
    status, out, _ = invoke("demo", tmp_path / "d", "--size", "small", "--workers", "0", "--json")
    assert status == 1  # a failed month, as without --json
    report = json.loads(out)
    assert report["months"] == rows and report["size"] == "small" and report["seconds"] == {"tracking": 1.5}
    assert report["failed_months"] == ["2023-07"] and report["problems"] == ["month 2023-07: no pairs"]
    assert report["products"] == str(tmp_path / "d" / "products")
    assert gvfuse.pipeline.run  # imported for the patch's sake: the command imports it too


def test_scan_and_check_json_shapes(tmp_path):
    status, out, _ = invoke("scan", tmp_path, "--json")
    assert status == 0 and json.loads(out) == {"directory": str(tmp_path), "product": None, "scenes": [],
                                               "skipped": []}
    status, out, _ = invoke("check", tmp_path, "--json")  # nothing published here: a problem, status 1
    report = json.loads(out)
    assert status == 1 and report["ok"] is False
    assert set(report) == {"catalog_dir", "ok", "items_checked", "assets_checked", "problems"}
    assert report["problems"] and all(set(p) == {"kind", "path", "item", "asset", "expected", "found"}
                                      for p in report["problems"])


def test_every_reporting_command_has_json():
    for name in ("pairs", "run", "track", "demo", "scan", "check", "validate", "plugins", "netcdf"):
        assert name in COMMANDS
        command = main.get_command(None, name)  # type: ignore[arg-type]
        assert any("--json" in getattr(p, "opts", ()) for p in command.params), name


# --------------------------------------------------------------------------- -v / -q / --log-level


def test_quiet_prints_no_progress_or_problem_list_verbose_logs_each_pair(workspace, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'input_dir = "{workspace / "scenes"}"\n' + (workspace / "run.toml").read_text()
                      .replace('product = "product.toml"', f'product = "{workspace / "product.toml"}"')
                      .replace('output_dir = "out"', 'output_dir = "q"'))
    status, out, err = invoke("-q", "run", config, "--workers", "0")
    assert status == 0 and "2023-01: " in out and err == ""
    status, _, err = invoke("-v", "run", config, "--workers", "0")
    assert status == 0 and "INFO gvfuse: pair " in err and "cached" in err
    status, _, err = invoke("run", "-v", config, "--workers", "0")  # the command's own -v, kept
    assert status == 0 and "INFO gvfuse: pair " in err
    status, _, err = invoke("--log-level", "error", "run", config, "--workers", "0")
    assert status == 0 and err == ""
    status, _, err = invoke("run", config, "--workers", "0")  # the level does not leak between invocations
    assert status == 0 and "INFO" not in err
    assert logging.getLogger("gvfuse").level == logging.NOTSET


def test_verbose_quiet_and_log_level_are_exclusive_and_checked():
    assert invoke("-v", "-q", "plugins")[0] == 2
    assert invoke("-q", "--log-level", "INFO", "plugins")[0] == 2
    assert invoke("--log-level", "LOUD", "plugins")[0] == 2
    assert invoke("-vv", "--version")[0] == 0


# --------------------------------------------------------------------------- exit statuses


def test_exit_status_is_0_done_1_bad_input_2_bad_command_line(workspace, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('product = "gangrigab-2023"\n[sensors.landsat]\ntrackr = "ncc"\n')
    assert invoke("pairs", workspace / "run.toml")[0] == 0
    (tmp_path / "file.txt").write_text("not a folder")
    for args in (["pairs", bad], ["run", "--dry-run", bad], ["scan", tmp_path, "--product", bad],
                 ["track", tmp_path / "a.tif", tmp_path / "b.tif", "-o", tmp_path / "v.tif"],
                 ["validate", tmp_path / "missing.tif"],
                 # paths are input wherever they are given: never a usage error
                 ["pairs", tmp_path / "missing.toml"], ["run", tmp_path], ["scan", tmp_path / "missing"],
                 ["scan", tmp_path / "file.txt"], ["check", tmp_path / "missing"],
                 ["check", tmp_path, "--schemas", tmp_path / "missing"],
                 ["track", "a", "b", "-o", tmp_path, "--force"], ["validate", tmp_path]):
        status, out, err = invoke(*args)
        assert status == 1 and out == "" and err.startswith("gvfuse: error: "), (args, out, err)
        assert len(err.strip().splitlines()) == 1
    for args in (["nosuch"], ["pairs"], ["run", "--workers", "-1", bad], ["demo", "--size", "huge"],
                 ["track", "a", "b", "-o", "c", "--param", "novalue"], ["track", "a", "b"],
                 ["validate", "--context", "novalue"], ["--log-level", "LOUD", "plugins"]):
        status, out, err = invoke(*args)
        assert status == 2 and "Usage:" in err, (args, out, err)


def test_an_os_error_while_working_is_one_line_status_1(monkeypatch, workspace):
    import gvfuse.pipeline.run

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(workspace / "out" / "x.tif"))

    monkeypatch.setattr(gvfuse.pipeline.run, "build_plan", full_disk)
    status, out, err = invoke("pairs", workspace / "run.toml")
    assert status == 1 and out == ""
    assert err.strip() == f"gvfuse: error: {workspace / 'out' / 'x.tif'}: No space left on device"


@pytest.mark.slow
def test_the_dask_cluster_speaks_only_with_verbose(tmp_path):
    """Without -v a local cluster prints nothing (tests/hostile/test_run_inputs.py); with -v its INFO lines show."""
    import subprocess
    import sys

    (tmp_path / "scenes").mkdir()
    (tmp_path / "run.toml").write_text('product = "gangrigab-2023"\noutput_dir = "out"\nmonths = ["2023-01"]\n'
                                       '[sensors.landsat]\n[weighting]\nname = "inverse-variance"\n')
    done = subprocess.run([sys.executable, "-m", "gvfuse.cli", "-v", "run", str(tmp_path / "run.toml"),
                           "--workers", "1"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 1  # no scene: the month fails, but the cluster was started and stopped
    assert any(line.startswith("INFO") and "distributed" in line for line in done.stderr.splitlines()), done.stderr
