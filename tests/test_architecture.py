"""The house rule (docs/architecture.md): imports only point down the floors.

Every module of ``src/spikesculpt`` is read with ``ast`` (nothing is imported); each import of a
spikesculpt module must go to the module's own part (folder) or to a part on a lower floor.
Imports inside ``if TYPE_CHECKING:`` are annotations, not imports, and are skipped. A function-
local import is allowed only for an optional dependency (a package outside spikesculpt that a
base install may lack, or one imported under ``try: ... except ImportError``), never to dodge a
cycle.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "spikesculpt"

# Floors, from the ground up. A part may import its own modules and any part on a lower floor;
# parts on the same floor do not import each other.
FLOORS = [
    ("core",),
    ("neurons", "encoding"),
    ("models", "data"),
    ("metrics", "sparse"),
    ("train",),
    ("methods",),
    ("inference", "export", "config"),
    ("experiments",),
    ("cli",),
    ("__init__", "__main__"),
]
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}

# Optional dependencies (extras) that may be imported inside functions, and only those.
OPTIONAL = {"nir", "nirtorch", "cma", "pymoo", "h5py", "torchvision", "spikingjelly", "snntorch",
            "matplotlib", "ray", "triton"}
# our own modules that import an optional dependency at their top (imported late for that reason)
OPTIONAL_WRAPPERS = {"spikesculpt.neurons.triton_kernels"}


def part_of(module: str) -> str:
    """``spikesculpt.methods.dynamic.base`` -> ``methods``; ``spikesculpt`` -> ``__init__``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__") and name != "spikesculpt.__init__":
            name = name[: -len(".__init__")]
        yield path, name


def _guards_import_error(node: ast.AST) -> bool:
    return isinstance(node, ast.Try) and any(
        getattr(h.type, "id", None) in ("ImportError", "ModuleNotFoundError") for h in node.handlers)


def imports(tree: ast.AST):
    """(node, imported module, inside a function) of every import, skipping TYPE_CHECKING
    blocks; an import guarded by ``except ImportError`` counts as top-level (optional)."""
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                continue
            if _guards_import_error(child):
                yield from walk(child, False)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child, alias.name, in_function
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module == "spikesculpt":
                    for alias in child.names:
                        yield child, f"spikesculpt.{alias.name}", in_function
                else:
                    yield child, child.module, in_function
            yield from walk(child, inner)
    yield from walk(tree, False)


def test_every_part_has_a_floor():
    parts = {part_of(name) for _, name in modules()}
    assert parts <= set(FLOOR), f"parts without a floor: {sorted(parts - set(FLOOR))}"


def test_imports_only_point_down():
    upward = []
    for path, name in modules():
        own = part_of(name)
        for node, target, _ in imports(ast.parse(path.read_text())):
            if not target.startswith("spikesculpt"):
                continue
            other = part_of(target)
            if other == own:
                continue
            if FLOOR[other] >= FLOOR[own]:
                upward.append(f"{path.relative_to(SRC)}:{node.lineno} imports {target} "
                              f"({own} on floor {FLOOR[own]} -> {other} on floor {FLOOR[other]})")
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_function_local_imports_only_for_optional_dependencies():
    local = []
    for path, name in modules():
        for node, target, in_function in imports(ast.parse(path.read_text())):
            if (in_function and target.split(".")[0] not in OPTIONAL
                    and target not in OPTIONAL_WRAPPERS):
                local.append(f"{path.relative_to(SRC)}:{node.lineno} {target}")
    assert not local, "function-local imports of non-optional modules:\n" + "\n".join(local)


@pytest.mark.parametrize("target, expect", [("spikesculpt.methods.dynamic", "methods"),
                                            ("spikesculpt", "__init__"),
                                            ("spikesculpt.config", "config")])
def test_part_of(target, expect):
    assert part_of(target) == expect


def _module_graph() -> dict[str, set[str]]:
    """Module -> the spikesculpt modules it imports at load time (``from pkg import submodule``
    counts as an import of the submodule; ``from pkg import name`` of the package)."""
    names = {name for _, name in modules()}

    def module_of(target: str) -> str:
        while target not in names and "." in target:
            target = target.rsplit(".", 1)[0]
        return target if target in names else "spikesculpt.__init__"

    graph = {}
    for path, name in modules():
        deps = set()
        for node, target, in_function in imports(ast.parse(path.read_text())):
            if in_function or not target.startswith("spikesculpt"):
                continue
            if isinstance(node, ast.ImportFrom) and node.module != "spikesculpt":
                subs = {f"{node.module}.{a.name}" for a in node.names} & names
                deps |= subs
                if len(subs) < len(node.names):
                    deps.add(module_of(node.module))
            else:
                deps.add(module_of(target))
        graph[name] = deps - {name}
    return graph


def test_no_import_cycles_between_modules():
    graph, state, cycles = _module_graph(), {}, []

    def visit(name, stack):
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "modules that import each other:\n" + "\n".join(cycles)


def data_layer(module: str) -> str:
    """Layers inside data/: ``sets`` (one reader each) over ``events`` (the event pipeline) over
    the base (registry, options, base types, files, augment, show)."""
    pieces = module.split(".")
    return pieces[2] if len(pieces) > 2 and pieces[2] in ("events", "sets") else "base"


def test_data_layers_point_down():
    order = {"base": 0, "events": 1, "sets": 2}
    upward = []
    for path, name in modules():
        if part_of(name) != "data" or name == "spikesculpt.data":
            continue                           # the package itself gathers (and registers) all
        own = data_layer(name)
        for node, target, _ in imports(ast.parse(path.read_text())):
            if (part_of(target) == "data" and target != "spikesculpt.data"
                    and order[data_layer(target)] > order[own]):
                upward.append(f"{path.relative_to(SRC)}:{node.lineno} imports {target}")
    assert not upward, "data/ imports that do not point down (sets -> events -> base):\n" + \
        "\n".join(upward)
