import json

from click.testing import CliRunner

from gvfuse import __version__
from gvfuse.cli import main


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "plugins" in result.output


def test_plugins_json_lists_components_with_their_distribution():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert set(listing) == {"components", "skipped"}
    for component in listing["components"]:
        assert {"kind", "name", "plugin", "distribution", "version"} <= set(component)


def test_unknown_command_exits_non_zero():
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2


def test_help_and_version_load_no_library_module():
    """``gvfuse --help`` and every ``gvfuse CMD --help`` import neither the pipeline nor numpy, rasterio or dask."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gvfuse.cli import COMMANDS, main\n"
        "for args in (['--help'], ['--version'], *([name, '--help'] for name in COMMANDS)):\n"
        "    assert CliRunner().invoke(main, args).exit_code == 0, args\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'rasterio', 'dask', 'distributed',\n"
        "    'scipy', 'pystac', 'matplotlib') or m.startswith(('gvfuse.pipeline', 'gvfuse.model', 'gvfuse.publish')))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_importing_the_cli_loads_no_array_cluster_or_plotting_library():
    """``import gvfuse.cli`` (what the ``gvfuse`` script does first) loads none of the heavy libraries.

    A fresh interpreter, so modules other tests imported do not count; the names are the libraries whose import
    made ``gvfuse --version`` take 1.5 s (issue 14).
    """
    import subprocess
    import sys

    heavy = ("dask", "distributed", "xarray", "matplotlib", "numpy", "rasterio", "scipy", "pystac", "cv2", "skimage")
    code = (
        "import sys, gvfuse.cli\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_gvfuse_track_loads_no_cluster_statistics_or_optimisation_library(tmp_path):
    """``gvfuse track`` on a small pair, in a fresh interpreter, never imports ``dask.distributed``,
    ``scipy.stats`` or ``scipy.optimize`` (about 0.5 s each to import; issue 14's start-up)."""
    import subprocess
    import sys

    from affine import Affine

    from gvfuse.io.raster import write_bands
    from gvfuse.model import Grid
    from tests.helpers.textures import shifted_pair

    grid = Grid("EPSG:32647", Affine(15, 0, 400000, 0, -15, 3300000), (120, 120))
    ref, sec = shifted_pair(120, 1.0, -0.5, seed=3, noise=0.05)
    for name, image in (("a.tif", ref), ("b.tif", sec)):
        write_bands(tmp_path / name, {"b": image}, grid, cog=False)
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gvfuse.cli import main\n"
        f"args = ['track', {str(tmp_path / 'a.tif')!r}, {str(tmp_path / 'b.tif')!r}, '-o', "
        f"{str(tmp_path / 'v.tif')!r}, '--tracker', 'ncc', '--window', '32', '--step', '4', '--max-speed', '1', "
        "'--dt', '16']\n"
        "result = CliRunner().invoke(main, args)\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.startswith(('distributed', 'scipy.stats', 'scipy.optimize'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_bad_input_is_one_line_and_status_1_usage_errors_status_2(tmp_path):
    runner = CliRunner()
    bad_config = tmp_path / "run.toml"
    bad_config.write_text("product = ")
    for args in (["pairs", str(bad_config)], ["run", str(bad_config)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1 and result.output.startswith("gvfuse: error: ") and "run.toml" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert runner.invoke(main, ["run", "--workers", "-1", str(bad_config)]).exit_code == 2
    assert runner.invoke(main, ["validate", "--no-such-option"]).exit_code == 2
