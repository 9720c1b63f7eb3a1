"""Dependencies run one way (README, "Layout"): every import of every package and top-level script,
read from the source (AST, no code run), goes to a unit of a lower layer or stays inside its own unit.

    modeling_ecmc  <-  processing_ecmc  <-  training_ecmc  <-  evaluation_ecmc  <-  hub_card  <-  entry points  <-  ecmc_cli

Run this file alone with `-s` to print the graph.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# unit -> layer; a unit may import only units of a lower layer (and itself)
LAYERS = {
    "modeling_ecmc": 0,
    "processing_ecmc": 1,
    "training_ecmc": 2,
    "evaluation_ecmc": 3,
    "hub_card": 4,
    # entry points: nothing imports them, but the `ecmc` command hands over to the demo
    "demo": 5, "train": 5, "benchmarks": 5, "scripts": 5,
    "ecmc_cli": 6,
}
# Files that travel inside a checkpoint import their siblings only as `from .module import name`
# (transformers copies them flat: DESIGN §3).
TRAVELLING = ("configuration_ecmc", "modeling_ecmc", "frontends_ecmc", "losses_ecmc", "vocabulary_ecmc", "encoding_ecmc",
              "processing_ecmc", "prompts_ecmc", "media_ecmc", "padding_ecmc", "pipeline_ecmc", "generation_ecmc",
              "faces_ecmc")


def unit_files():
    for unit in LAYERS:
        folder, script = ROOT / unit, ROOT / f"{unit}.py"
        if folder.is_dir():
            yield from ((unit, path) for path in sorted(folder.rglob("*.py")))
        elif script.is_file():
            yield unit, script


def imported_units(path: Path, unit: str) -> set:
    """The units `path` imports (relative imports resolve to its own unit)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [unit] if node.level else [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in LAYERS}
    return found - {unit}


def import_graph() -> dict:
    graph = {unit: {} for unit in LAYERS}
    for unit, path in unit_files():
        for target in imported_units(path, unit):
            graph[unit].setdefault(target, []).append(str(path.relative_to(ROOT)))
    return graph


def find_cycle(graph: dict):
    """One cycle as a list of units, or None (depth-first search)."""
    state = {}

    def visit(unit, stack):
        state[unit] = "open"
        for target in graph[unit]:
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target, stack + [target])
                if cycle:
                    return cycle
        state[unit] = "done"
        return None

    for unit in graph:
        if unit not in state:
            cycle = visit(unit, [unit])
            if cycle:
                return cycle
    return None


def test_no_cycle_and_no_upward_import():
    graph = import_graph()
    print("\nimport graph (unit -> units it imports):")
    for unit in sorted(graph, key=LAYERS.get):
        print(f"  {unit} (layer {LAYERS[unit]}) -> {', '.join(sorted(graph[unit], key=LAYERS.get)) or '-'}")
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"
    upward = [f"{unit} -> {target} ({', '.join(files)})" for unit, targets in graph.items()
              for target, files in targets.items() if LAYERS[target] >= LAYERS[unit]]
    assert not upward, "imports that go up a layer or sideways:\n" + "\n".join(upward)


def test_the_checker_sees_cycles_and_upward_imports():
    assert find_cycle({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": []}, "b": {}}) is None
    assert "modeling_ecmc" not in imported_units(ROOT / "modeling_ecmc" / "modeling_ecmc.py", "modeling_ecmc")


@pytest.mark.parametrize("name", TRAVELLING)
def test_travelling_files_import_siblings_flat(name):
    """Only `from .sibling import x` of our own code: no package imports, no `from . import x`, no
    deeper relative paths, and every sibling imported travels too."""
    path = ROOT / "modeling_ecmc" / f"{name}.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and node.module and "." not in node.module, f"{path.name}: {ast.unparse(node)}"
            assert node.module in TRAVELLING, f"{path.name} imports {node.module}, which does not travel"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert not any(m.split(".")[0] in LAYERS for m in modules), f"{path.name}: {ast.unparse(node)}"


def test_no_sys_path_manipulation():
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno}" for unit, path in [*unit_files(), *(
        ("tests", p) for p in sorted((ROOT / "tests").glob("*.py")))]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
        and node.value.id == "sys"]
    assert not offenders, f"sys.path is touched at {offenders}"
