"""The package's shape: no import cycle between its modules, counting imports inside functions
too."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "cryptovol"
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "_modidx"))


def _targets(node: ast.AST, here: str) -> set[str]:
    """The cryptovol modules an import statement names (relative, `cryptovol.x`, or `from cryptovol
    import x`)."""
    if isinstance(node, ast.Import):
        return {a.name.split(".")[1] for a in node.names if a.name.startswith("cryptovol.")}
    if not isinstance(node, ast.ImportFrom):
        return set()
    mod = node.module or ""
    if node.level == 1:
        return {mod.split(".")[0]} if mod else {a.name for a in node.names}
    if mod.startswith("cryptovol."):
        return {mod.split(".")[1]}
    if mod == "cryptovol":
        return {a.name for a in node.names}
    return set()


def import_graph() -> dict[str, set[str]]:
    "Module -> the package modules it imports anywhere in its body (top level or inside functions)."
    graph = {}
    for m in MODULES:
        tree = ast.parse((PKG / f"{m}.py").read_text())
        found = set().union(*(_targets(n, m) for n in ast.walk(tree)))
        graph[m] = {t for t in found if t in MODULES and t != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    "Strongly connected components with more than one module (Tarjan), each sorted."
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_package_modules():
    graph = import_graph()
    assert {"backtest", "globalnet", "train", "evaluate"} <= set(graph)
    found = cycles(graph)
    assert found == [], (
        f"import cycle(s) {found}: move the shared definitions down a layer "
        f"(edges: { {m: sorted(graph[m] & set(c)) for c in found for m in c} })"
    )


def test_the_layers_point_one_way():
    """config is the bottom; the data layer never imports modelling code; training never imports the
    global model."""
    g = import_graph()
    assert g["config"] == set()
    assert g["data"] <= {"config"} and g["features"] <= {"config", "data"}
    assert "globalnet" not in g["train"] | g["model"] | g["evaluate"], (
        "the global model builds on train/model, not the reverse"
    )


MAX_FUNCTION_LINES = 50


def test_no_function_is_longer_than_fifty_lines():
    "Short functions: the longest in the package (definition to last line) has at most 50 lines."
    long = []
    for m in MODULES:
        for n in ast.walk(ast.parse((PKG / f"{m}.py").read_text())):
            if (
                isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES
            ):
                long.append(f"{m}.{n.name} ({n.end_lineno - n.lineno + 1} lines)")
    assert long == [], f"split these functions into named steps (in their notebooks): {long}"


def export_cells() -> list[tuple[str, str]]:
    "(notebook name, source) of every `#| export` cell in nbs/."
    import json

    out = []
    for nb in sorted((PKG.parent / "nbs").glob("*.ipynb")):
        for c in json.loads(nb.read_text())["cells"]:
            src = "".join(c["source"])
            if c["cell_type"] == "code" and src.startswith("#| export"):
                out.append((nb.name, src))
    return out


def test_each_export_cell_holds_one_definition():
    """fastcore/nbdev style: one function or class per export cell (constants and imports may sit
    beside it), so each definition can be followed by its own demonstration and docs entry."""
    crowded = []
    for name, src in export_cells():
        defs = [
            n.name
            for n in ast.parse(src).body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        if len(defs) > 1:
            crowded.append(f"{name}: {defs}")
    assert len(export_cells()) > 200
    assert crowded == [], f"give each definition its own export cell: {crowded}"
