"""A run's folders and scheduler: a missing input folder or an unusable scheduler address is one line, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gvfuse.cli import main
from gvfuse.errors import InputError
from gvfuse.pipeline.scan import scan

RUN = '''product = "gangrigab-2023"
input_dir = "scenes"
output_dir = "out"
months = ["2023-01"]
[sensors.landsat]
[weighting]
name = "inverse-variance"
'''


def _invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("make, words", [(lambda p: None, "does not exist"),
                                         (lambda p: p.write_text("not a folder"), "is not a folder")])
def test_a_missing_input_folder_is_one_line_naming_the_field(tmp_path: Path, make, words):
    make(tmp_path / "scenes")
    (tmp_path / "run.toml").write_text(RUN)
    for command in (["pairs"], ["run", "--dry-run"], ["run", "--workers", "0"]):
        result = _invoke(*command, tmp_path / "run.toml")
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "[input_dir]" in lines[0] and words in lines[0], result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match=words):
        scan(tmp_path / "scenes", ())


def test_an_unusable_scheduler_address_is_one_line_and_leaves_dasks_configuration_as_it_was(tmp_path: Path):
    import dask

    (tmp_path / "scenes").mkdir()
    (tmp_path / "run.toml").write_text(RUN)
    before = dask.config.get("scheduler", None)
    result = _invoke("run", tmp_path / "run.toml", "--scheduler", "not-an-address")
    assert result.exit_code == 1 and "--scheduler" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    # a client that fails to connect must not leave "dask.distributed" as this process's scheduler: every
    # later dask computation (odc-stac, xarray, a fusion) would fail with "no Client active"
    assert dask.config.get("scheduler", None) == before


def test_a_tcp_service_that_is_not_a_dask_scheduler_is_refused_in_one_line_without_waiting_for_ever(tmp_path: Path,
                                                                                                  monkeypatch):
    import socket
    import threading

    import gvfuse.pipeline.run as run_module

    monkeypatch.setattr(run_module, "SCHEDULER_TIMEOUT_S", 1)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()  # accepts, never answers
    (tmp_path / "scenes").mkdir()
    (tmp_path / "run.toml").write_text(RUN)
    try:
        result = _invoke("run", tmp_path / "run.toml", "--scheduler", f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert result.exit_code == 1 and "no dask scheduler answered within 1 s" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_a_run_on_a_local_cluster_prints_no_cluster_chatter(tmp_path: Path):
    import subprocess
    import sys

    (tmp_path / "scenes").mkdir()
    (tmp_path / "run.toml").write_text(RUN)
    done = subprocess.run([sys.executable, "-m", "gvfuse.cli", "run", str(tmp_path / "run.toml"), "--workers", "1"],
                          capture_output=True, text=True, timeout=120)
    # no scene: the month fails (exit 1), but the cluster was started and stopped
    assert done.returncode == 1 and "2023-01: FAILED" in done.stdout
    chatter = [line for line in done.stderr.splitlines() if line.startswith(("INFO", "DEBUG")) or "dashboard" in line
               or "Traceback" in line or "warnings.warn" in line]
    assert not chatter, done.stderr


def test_a_grid_too_large_for_the_machine_is_refused_when_the_product_is_read(tmp_path: Path):
    from gvfuse.errors import ConfigError
    from gvfuse.product import load_product

    text = load_product("gangrigab-2023").source
    fine = Path(text).read_text().replace("resolution_m = 30.0", "resolution_m = 0.01")
    assert fine != Path(text).read_text()
    (tmp_path / "product.toml").write_text(fine)
    with pytest.raises(ConfigError, match=r"grid.resolution_m.*GiB"):
        load_product(tmp_path / "product.toml")


def test_a_step_larger_than_the_product_area_is_refused_before_any_tracking(tmp_path: Path):
    from tests.helpers.scenes import optical_pair_run

    optical_pair_run(tmp_path, "step-test", tracker_parameters="{ window_px = 32, step_px = 100000 }")
    for command in (["pairs"], ["run", "--dry-run"], ["run", "--workers", "0"]):
        result = _invoke(*command, tmp_path / "run.toml")
        assert result.exit_code == 1, result.output
        [line] = result.output.strip().splitlines()
        assert "[sensors.optical.tracker_parameters]" in line and "100000 px step is larger than the" in line
    assert not (tmp_path / "out").exists()
