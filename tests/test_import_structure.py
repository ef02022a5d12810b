"""The package's import structure: layers that only import downwards, and no import circles.

Every ``import`` of a w2sprobe module is read from the source (``ast``), at module level and
inside functions alike, so a lazy import counts as much as an eager one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "w2sprobe"

#: The architecture, bottom up: a module may import its own layer and the ones below it.
LAYERS: list[set[str]] = [
    {
        "__init__",
        "__version__",
        "atomic",
        "errors",
        "hashing",
        "jsonutil",
        "vocabulary",
        "options",
        "layers",
        "pooling",
        "workspace",
        "metrics",
        "hubnet",
        "distributed",
        "graph",
        "provenance",
        "hints",
    },
    {"models", "data"},
    {"cache", "labels", "runs"},
    {"probes", "train", "report", "pgr_rule", "diagnostics", "views"},
    {"study", "inventory", "tracking", "inspection"},
    {"pipeline"},
    {"cli", "__main__"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str) -> str:
    """``w2sprobe.cache.plan.ExtractPlan`` -> the module it lives in, ``w2sprobe.cache.plan``."""
    parts = name.split(".")
    while len(parts) > 1:
        folder = PACKAGE.parent.joinpath(*parts)
        if folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return name


def import_graph() -> dict[str, set[str]]:
    """module -> the w2sprobe modules it imports (anywhere in its source)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                names = [source] if node.module else [f"{source}.{a.name}" for a in node.names]
                targets.update(n for n in names if n.startswith("w2sprobe"))
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("w2sprobe"))
        graph[module] = {_resolve(t) for t in targets} - {module}
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for rank, members in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_there_is_no_import_circle():
    graph = import_graph()
    circles, done = [], set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            circles.append(trail[trail.index(module) :] + [module])
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            # A package's own __init__ re-exports its modules; importing the package from one
            # of them is not a circle of modules.
            if not module.startswith(target + "."):
                visit(target, [*trail, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert circles == []
