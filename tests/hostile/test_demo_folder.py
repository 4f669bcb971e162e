"""Case 6: ``gvfuse demo DIR`` never overwrites the user's files, and never mixes two demo sizes in one folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gvfuse.cli import main
from gvfuse.demo import FULL, SMALL, prepare_folder, product_toml, run_toml
from gvfuse.errors import OutputExistsError

MINE = "# my own configuration\nproduct = 'mine.toml'\n"


@pytest.mark.parametrize("name", ["run.toml", "product.toml", "summary.md", "summary.json"])
def test_the_users_own_file_is_refused_on_one_line_and_kept(tmp_path, name):
    (tmp_path / name).write_text(MINE)
    result = CliRunner().invoke(main, ["demo", str(tmp_path), "--size", "small", "--workers", "0"])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("gvfuse: error: ")
    assert name in result.output and "--force" in result.output
    assert (tmp_path / name).read_text() == MINE
    assert not (tmp_path / "scenes").exists()


def test_the_demos_own_files_are_rewritten_and_an_edited_one_is_the_users(tmp_path):
    prepare_folder(tmp_path, SMALL)
    (tmp_path / "summary.md").write_text("# gvfuse demo: fused monthly velocity against the known truth\n")
    (tmp_path / "summary.json").write_text("[]\n")
    prepare_folder(tmp_path, SMALL)  # all the demo's own: no complaint
    (tmp_path / "run.toml").write_text(run_toml(SMALL) + "# my edit\n")
    with pytest.raises(OutputExistsError, match=r"run\.toml not written by gvfuse demo"):
        prepare_folder(tmp_path, SMALL)
    prepare_folder(tmp_path, SMALL, force=True)
    assert (tmp_path / "run.toml").read_text() == run_toml(SMALL)


def test_force_overwrites_the_users_files(tmp_path):
    (tmp_path / "product.toml").write_text(MINE)
    prepare_folder(tmp_path, SMALL, force=True)
    assert (tmp_path / "product.toml").read_text() == product_toml(SMALL)


def _small_demo_folder(folder: Path, *, recorded: bool) -> Path:
    if recorded:
        prepare_folder(folder, SMALL)
    else:  # as a demo made before the folder record existed
        (folder / "product.toml").write_text(product_toml(SMALL))
        (folder / "run.toml").write_text(run_toml(SMALL))
    (folder / "scenes").mkdir()
    (folder / "scenes" / ".complete").write_text("42")
    (folder / "products").mkdir()
    (folder / "products" / "202306.tif").write_bytes(b"small grid")
    return folder


@pytest.mark.parametrize("recorded", [True, False])
def test_a_demo_of_another_size_is_refused_then_rebuilt_with_force(tmp_path, recorded):
    folder = _small_demo_folder(tmp_path, recorded=recorded)
    with pytest.raises(OutputExistsError, match="holds a demo of small size"):
        prepare_folder(folder, FULL)
    assert (folder / "scenes" / ".complete").exists()  # untouched
    prepare_folder(folder, FULL, force=True)
    assert not (folder / "scenes").exists() and not (folder / "products").exists()
    assert (folder / "product.toml").read_text() == product_toml(FULL)
    prepare_folder(folder, FULL)  # now the full demo's folder


def test_scenes_of_an_unknown_size_are_not_reused(tmp_path):
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / ".complete").write_text("42")
    with pytest.raises(OutputExistsError, match="holds a demo of another size"):
        prepare_folder(tmp_path, FULL)


def test_the_cli_refuses_a_small_demo_folder_for_the_full_size(tmp_path):
    _small_demo_folder(tmp_path, recorded=True)
    result = CliRunner().invoke(main, ["demo", str(tmp_path), "--size", "full", "--workers", "0"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "small size" in result.output
    assert (tmp_path / "products" / "202306.tif").read_bytes() == b"small grid"


def test_a_folder_of_the_same_size_from_an_earlier_gvfuse_is_reused_and_its_definitions_rewritten(tmp_path):
    import hashlib
    import json

    text = product_toml(SMALL)
    earlier = text[:text.index("\n# The product's sensor legend")]  # the definition before it named its sensors
    (tmp_path / "product.toml").write_text(earlier)
    (tmp_path / "run.toml").write_text(run_toml(SMALL))
    digest = hashlib.sha256(earlier.encode()).hexdigest()
    record = {"size": digest, "files": {"product.toml": digest,
                                        "run.toml": hashlib.sha256(run_toml(SMALL).encode()).hexdigest()}}
    (tmp_path / ".gvfuse-demo.json").write_text(json.dumps(record))
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / ".complete").write_text("42")
    prepare_folder(tmp_path, SMALL)  # the same size: no refusal, scenes kept, the definition brought up to date
    assert (tmp_path / "scenes" / ".complete").exists() and (tmp_path / "product.toml").read_text() == text
    with pytest.raises(OutputExistsError, match="holds a demo of small size"):
        prepare_folder(tmp_path, FULL)
