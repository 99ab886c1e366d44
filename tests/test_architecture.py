"""The house rules of docs/architecture.md that code can check: a stage's one name in four places, a command line
that only dispatches, leaves that never import a stage, and no import cycle."""

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

from mrisr import cli
from mrisr.commands import COMMANDS, GROUPS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mrisr"
STAGES = ("fetch", "prepare", "degrade", "pretrain", "train", "external", "super_resolve", "evaluate", "segment", "anatomy",
          "papers")
#: Modules that stages share; none of them may import a stage (degrade is both: a stage and the leaf that
#: training degrades its patches with).
LEAVES = ("io", "environments", "device", "trainer", "metrics", "perceptual", "stats", "patches", "distributed", "models",
          "config", "errors", "degrade", "plan", "losses", "generator_trainer", "settings", "captions", "scale", "bids",
          "model_card", "preprocessing", "json_files", "grid", "segmenter")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or path.is_dir()


def _imports() -> dict[str, set[str]]:
    """mrisr module -> the mrisr modules it imports anywhere in its body (function-level imports too)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name, found = _module_name(path), set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("mrisr")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mrisr"):
                # `from mrisr.x import y` imports the module mrisr.x.y where there is one, else names of mrisr.x
                found |= {f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}") else node.module
                          for a in node.names}
        graph[name] = found - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_no_false_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_the_package():
    graph = _imports()
    assert "mrisr.papers.augment" in graph and "mrisr.io" in graph["mrisr.papers.augment"]
    assert _cycle(graph) is None


def test_leaves_never_import_a_stage():
    stages = {s for s in STAGES if s != "degrade"}
    for module, imported in _imports().items():
        if module.removeprefix("mrisr.").split(".")[0] in LEAVES:
            offending = sorted(i for i in imported if i.removeprefix("mrisr.").split(".")[0] in stages)
            assert not offending, f"{module} imports the stage module(s) {offending}"


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_has_one_name_in_four_places(stage):
    assert (ROOT / "workflow" / "rules" / f"{stage}.smk").is_file()
    assert stage.replace("_", "-") in {names[0] for names in COMMANDS}
    importlib.import_module(f"mrisr.{stage}")
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    paths = re.findall(r'"(results/[^"]+)"', common.split("PATHS = {")[1].split("}\n")[0])
    assert any(p.startswith(f"results/{stage}/") for p in paths), paths
    included = re.findall(r'include: "workflow/rules/(\w+)\.smk"', (ROOT / "Snakefile").read_text())
    assert stage in included


def test_results_readme_names_each_results_folder():
    listed = set(re.findall(r"^\| `(\w+)/`", (ROOT / "results" / "README.md").read_text(), re.M))
    assert listed == set(STAGES) | {"logs"}


def test_every_rule_file_is_a_stage_and_every_results_folder_a_stage():
    rule_files = {p.stem for p in (ROOT / "workflow" / "rules").glob("*.smk")}
    assert rule_files == {*STAGES, "common"}
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    folders = set(re.findall(r'"results/(\w+)/', common.split("PATHS = {")[1].split("}\n")[0]))
    assert folders == set(STAGES)


@pytest.mark.parametrize("names", list(COMMANDS), ids=" ".join)
def test_each_command_calls_its_stage_function_with_exactly_its_options(names):
    """The dispatch passes every option as a keyword, a group's as one object: the options must be the function's
    parameters (and the command line, to a function that records it), a group's its class's fields."""
    target, _, options = COMMANDS[names]
    module, _, function = target.partition(":")
    assert module.removeprefix("mrisr.").split(".")[0] == names[0].replace("-", "_")
    signature = inspect.signature(getattr(importlib.import_module(module), function))
    subparser = cli.parser()._subparsers._group_actions[0].choices[names[0]]
    if len(names) == 2:
        subparser = subparser._subparsers._group_actions[0].choices[names[1]]
    dests = {a.dest for a in subparser._actions if a.dest not in ("help",)}
    for group in {d.partition(".")[0] for d in dests if "." in d}:
        module, _, cls = GROUPS[group].partition(":")
        fields = {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}
        assert fields == {d.partition(".")[2] for d in dests if d.startswith(f"{group}.")}, group
        dests = {d for d in dests if not d.startswith(f"{group}.")} | {group}
    dests |= {"command_line"} & set(signature.parameters)
    needed = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    assert needed <= dests <= set(signature.parameters), (needed, dests)


def test_every_network_the_registry_names_exists():
    from mrisr.models.registry import BUILDERS

    for role, names in BUILDERS.items():
        for name, (target, _) in names.items():
            module, _, builder = target.partition(":")
            assert callable(getattr(importlib.import_module(module), builder)), (role, name)


def test_a_stage_never_imports_another_stage():
    """What two stages share lives in a leaf (the generator trainer, the losses), not in one of them."""
    others = {s for s in STAGES if s != "degrade"}
    for module, imported in _imports().items():
        stage = module.removeprefix("mrisr.").split(".")[0]
        if stage in STAGES:
            offending = sorted(i for i in imported if i.removeprefix("mrisr.").split(".")[0] in others - {stage})
            assert not offending, f"{module} imports the stage module(s) {offending}"


def test_a_networks_defaults_are_the_schemas_alone():
    """Each builder takes exactly its schema definition's keys (a generator also the run's scale), none with a default
    of its own: the registry fills them from the schema."""
    from mrisr.config import load_schema
    from mrisr.models.registry import BUILDERS, TRAINING_KEYS

    for role, names in BUILDERS.items():
        for name, (target, definition) in names.items():
            module, _, builder = target.partition(":")
            parameters = inspect.signature(getattr(importlib.import_module(module), builder)).parameters
            assert all(p.default is inspect.Parameter.empty for p in parameters.values()), (role, name)
            keys = set(load_schema()["definitions"][definition]["properties"]) - {"name", *TRAINING_KEYS.get(role, ())}
            assert set(parameters) == keys | ({"scale"} if role == "generator" else set()), (role, name)


def test_no_function_takes_more_than_ten_parameters():
    """Options that travel together are one object (mrisr.commands.GROUPS), not a long list of keywords."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
                if len([n for n in names if n not in ("self", "cls")]) > 10:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert not long, long
