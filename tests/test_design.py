"""The documentation stays true: the tree in docs/design.md, the hooks and CLI options, the entry points."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from pathlib import Path

import click
import pytest

from gvfuse import hookspecs
from gvfuse.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("gvfuse", "plugins", "catalog")


def _design_tree() -> set[str]:
    """Every file the Layout block of design.md names, as a path from the repository root."""
    text = (DOCS / "design.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    paths, stack = set(), []
    for line in block.splitlines():
        match = re.match(r"^( *)(\S+)", line)
        if not match or match[2].startswith(("#", "...")):
            continue
        depth, name = len(match[1]) // 2, match[2]
        if " " * len(match[1]) != match[1] or len(match[1]) % 2:
            continue
        if not (name.endswith("/") or "." in name):
            continue  # a continuation line of a description
        stack = [*stack[:depth], name.rstrip("/")]
        if not name.endswith("/"):
            paths.add("/".join(stack))
    return paths


def _package_files() -> set[str]:
    out = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".toml", ".typed"):
                out.add(path.relative_to(ROOT).as_posix())
    return out


def test_the_tree_in_design_md_is_the_package_tree():
    documented, actual = _design_tree(), _package_files()
    assert actual - documented == set(), "files missing from docs/design.md"
    assert documented - actual == set(), "docs/design.md names files that do not exist"


def test_every_hook_is_documented_in_plugins_md():
    text = (DOCS / "plugins.md").read_text()
    hooks = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("gvfuse_")]
    assert len(hooks) == 9
    for name in hooks:
        signature = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({signature})`" in text, f"{name}({signature}) is not documented in docs/plugins.md"


def _command_options(command: click.Command) -> list[str]:
    return [opt for param in command.params if isinstance(param, click.Option) for opt in param.opts]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_is_documented_in_cli_md(name):
    text = (DOCS / "cli.md").read_text()
    section = text.split(f"## `gvfuse {name}", 1)
    assert len(section) == 2, f"gvfuse {name} has no section in docs/cli.md"
    body = section[1].split("\n## ", 1)[0]
    command = main.get_command(click.Context(main), name)
    assert command is not None
    for option in _command_options(command):
        if option not in ("-h", "--help"):
            assert option in body, f"gvfuse {name} {option} is not documented in docs/cli.md"


def test_bundled_entry_points_are_exactly_the_bundled_plugin_modules():
    declared = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="gvfuse")
                if ep.dist is not None and ep.dist.name == "gvfuse"}
    modules = {f"gvfuse_plugins.{p.stem}" for p in (ROOT / "plugins").glob("*.py") if p.stem != "__init__"}
    assert set(declared.values()) == modules
    assert all(value.rsplit(".", 1)[1] == name for name, value in declared.items())


def test_no_core_module_names_a_bundled_plugin():
    from gvfuse.plugins import load_plugins

    bundled = {reg.name for kind in load_plugins().registry.values() for reg in kind.values()
               if reg.plugin.distribution == "gvfuse"}
    # the reference method's defaults, the demo's configuration and the sensor formats the bundled readers parse
    allowed = {"gvfuse/config.py", "gvfuse/demo.py"}
    allowed_dirs = ("gvfuse/formats/", "gvfuse/testing/")
    # words that are also plugin names: matplotlib's equal aspect, the template matcher's "ncc" method
    same_word = {("gvfuse/plots.py", "equal"), ("gvfuse/tracking/template_match.py", "ncc")}
    found = []
    for path in sorted((ROOT / "gvfuse").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in allowed or rel.startswith(allowed_dirs):
            continue
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        found += [f"{rel}: {name!r}" for name in bundled if (rel, name) not in same_word
                  and re.search(rf"[\"']{re.escape(name)}[\"']", code)]
    assert found == []
