"""The commands' one declaration (mrisr.commands): what the workflow writes is what the CLI reads back, and no flag
is spelled anywhere else."""

import argparse
import ast
import json
import re
import shlex
from pathlib import Path

import pytest

from mrisr.cli import parser
from mrisr.commands import COMMANDS, Option, bids_filters, command_line, json_in_order, scale_type

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _value(option: Option):
    """A value this option can hold, awkward for a shell: spaces, quotes, JSON, lists."""
    settings = option.settings
    if settings.get("action") == "store_true":
        return True
    if settings.get("action") is argparse.BooleanOptionalAction:
        return not settings.get("default", False)
    if "choices" in settings:
        return settings["choices"][-1]
    convert = settings.get("type", str)
    if convert in (json.loads, json_in_order):
        return {"label": "a (b)", "values": [1, 2.5, None], "quote": "it's"}
    if convert is bids_filters:
        return {"acquisition": "it's a (b)", "run": [1, None]}
    if convert is scale_type:
        return [1, 1, 4]
    default = settings.get("default")  # a value other than the default, within the schema's range (a lower bound)
    if getattr(convert, "__name__", "") == "int":
        return 3 if default is None else default + 1
    if getattr(convert, "__name__", "") == "float":
        return 0.5 if default is None else default + 0.5
    return "a path/with space's"


@pytest.mark.parametrize("names", list(COMMANDS), ids=" ".join)
def test_every_option_written_by_name_is_read_back_by_the_parser(names):
    """Each option at a value of its type, quoted by command_line, parsed by the CLI's own parser: the same value."""
    options = COMMANDS[names][2]
    values = {}
    for option in options:
        value = _value(option)
        many = list(option.settings["choices"]) if "choices" in option.settings else [value, "second"]
        values[option.dest] = many if option.settings.get("nargs") in ("+", "*") else value
    grouped: dict = {}
    for name, value in values.items():
        group, dot, field = name.partition(".")
        if dot:
            grouped.setdefault(group, {})[field] = value
        else:
            grouped[name] = value
    line = command_line(" ".join(names), **grouped)
    parsed = vars(parser().parse_args([*names, *shlex.split(line)]))
    assert {name: parsed[name] for name in values} == values


def test_an_unknown_or_missing_option_is_a_bug_that_says_which():
    with pytest.raises(KeyError, match="unknown.*'tiles'"):
        command_line("degrade", hr="h", out="o", degradation={}, scale=2, noise_sigma=0, noise_seed=0, tiles=3)
    with pytest.raises(KeyError, match="missing.*'noise_seed'"):
        command_line("degrade", hr="h", out="o", degradation={}, scale=2, noise_sigma=0)
    assert command_line("super-resolve", inputs=["a"], output="b", method={"model": "m"}) == "a b --model m"
    assert command_line("super-resolve", inputs=["a"], output="b", method={"model": "m"},
                        acceleration={"cudnn_benchmark": False}, threads=None) == "a b --model m --no-cudnn-benchmark"


def _flags_in_strings(path: Path) -> set[str]:
    text = path.read_text()
    if path.suffix == ".smk":  # a rule's shell: the strings are what the shell runs; comments are not
        return {f for line in text.splitlines() if not line.lstrip().startswith("#") and '"' in line
                for f in FLAG.findall(line.split("#")[0]) if f != "--use-conda"}
    tree = ast.parse(text)
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return {f for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings for f in FLAG.findall(node.value)}


def test_no_flag_is_spelled_outside_its_declaration():
    """Planning writes options by name; a rule's shell spells only what Snakemake itself gives (``--threads
    {threads}``: a job's threads are no rerun trigger), and only to commands that declare it so."""
    plan = {f for path in (ROOT / "src/mrisr/plan").glob("*.py") for f in _flags_in_strings(path)}
    assert plan == set(), plan
    from_rule = {o.flag for _, _, options in COMMANDS.values() for o in options if o.from_rule}
    for path in (ROOT / "workflow/rules").glob("*.smk"):
        shells = re.findall(r'"mrisr ([a-z-]+(?: [a-z-]+)?) ([^"]*)"', path.read_text())
        for command, rest in shells:
            declared = {o.flag for o in COMMANDS.get(tuple(command.split()), ("", "", []))[2] if o.from_rule}
            assert set(FLAG.findall(rest)) <= declared, (path.name, command, rest)
        assert _flags_in_strings(path) <= from_rule, path.name


def test_a_whole_config_keeps_the_order_of_its_keys():
    """The order of a config's variants is the tables' order: `mrisr plan --config-json` reads it as written."""
    config = {"variants": {"zeta": {}, "alpha": {}}}
    parsed = vars(parser().parse_args(["plan", *shlex.split(command_line("plan", config_json=config))]))
    assert list(parsed["config_json"]["variants"]) == ["zeta", "alpha"]
    assert '"alpha"' in command_line("degrade", hr="h", out="o", degradation={"zeta": 1, "alpha": 2}, scale=2,
                                     noise_sigma=0, noise_seed=0).split("zeta")[0]  # other JSON: keys sorted
