"""The package's layers (docs/design.md, "Layers"): which module may import which.

The import graph is read from the source with ``ast`` (function-local imports and ``TYPE_CHECKING``
blocks included, so a cycle dodged by a late import still counts) and checked against
:data:`LAYERS`: every module belongs to one layer, imports only its own layer and the layers it
lists, and no modules import each other in a cycle, except a registry importing its entries
(``pkg.registry`` -> the modules of ``pkg`` that register themselves in it).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# layer -> (module names or prefixes in it, the layers it may import); a module belongs to the layer
# of its longest matching prefix. Lower layers first: a layer may import only layers listed before
# it (test_the_table_lists_lower_layers_first), so an import that runs back up, from a lower layer
# into a higher one, is one the table cannot allow.
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # bounded_files: the one reader of every YAML and JSON file lkca reads; atomic_files: the
    # one writer of every file lkca writes
    "base": (("lkca.errors", "lkca.version", "lkca.bounded_files", "lkca.atomic_files"), ()),
    "config": (("lkca.config",), ("base",)),
    "checkpoint": (("lkca.checkpoint",), ("base",)),
    "data": (("lkca.data",), ("base",)),
    # how LKCA(impl="auto") chooses: it knows no layer (the layer passes its implementations in)
    "autotune": (("lkca.autotune",), ("base",)),
    "layers": (("lkca.layers",), ("autotune", "base")),
    # params/MACs of any module: used by models (segmentor_params), engines and reports
    "profile": (("lkca.models.profile",), ("layers", "base")),
    # classification models and the segmentation models (backbones, neck, heads, segmentor)
    "models": (("lkca.models", "lkca.seg"), ("layers", "profile", "checkpoint", "base")),
    # the record -> model builder: below the engines and the loader that both build models
    "builder": (("lkca.builder",), ("models", "checkpoint", "base")),
    # the authors' checkpoints: one converter per family and the loader that dispatches to them
    "authors": (("lkca.authors",), ("builder", "models", "checkpoint", "base")),
    # the runtime records and replays LKCA's implementation choices (runtime/impl_record.py)
    "runtime": (("lkca.runtime",), ("config", "checkpoint", "layers", "autotune", "base")),
    "pretrained": (("lkca.pretrained",),
                   ("builder", "models", "data", "layers", "checkpoint", "base")),
    "engines": (("lkca.train", "lkca.seg.engine", "lkca.seg.config", "lkca.seg.optim"),
                ("runtime", "pretrained", "builder", "models", "profile", "data", "layers",
                 "autotune", "config", "checkpoint", "base")),
    # analysis compares runs' configs with the config language's comparison (config.compare)
    "analysis": (("lkca.analysis",), ("pretrained", "builder", "models", "profile", "data",
                                      "runtime", "config", "layers", "checkpoint", "base")),
    "export": (("lkca.export",), ("pretrained", "models", "layers", "checkpoint", "base")),
    "plugins": (("lkca.mmseg",), ("models", "layers", "base")),
    # the command line: every group's commands module
    "commands": (("lkca.cli", "lkca.__main__", "lkca.train.commands", "lkca.seg.commands",
                  "lkca.analysis.commands", "lkca.data.commands", "lkca.export.commands",
                  "lkca.autotune.commands", "lkca.reproduce"),
                 ("engines", "analysis", "export", "plugins", "pretrained", "authors", "builder",
                  "runtime", "models", "profile", "data", "layers", "autotune", "config",
                  "checkpoint", "base")),
    # the public API (lkca/__init__.py)
    "api": (("lkca",), ("authors", "pretrained", "models", "profile", "layers", "autotune",
                        "base")),
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package's __init__)."""
    out = {}
    for path in (SRC / "lkca").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the lkca modules it imports anywhere in its body (a name imported from a
    package counts as its submodule when there is one, else as the package)."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if is_pkg else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                found = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in found:
                if target.split(".")[0] == "lkca":
                    resolved = resolve(target)
                    if resolved is not None and resolved != name:
                        targets.add(resolved)
        graph[name] = targets
    return graph


def layer_of(module: str) -> str | None:
    """The layer whose longest prefix matches ``module``."""
    best, length = None, -1
    for layer, (prefixes, _) in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = layer, len(prefix)
    return best


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan), leaving out the edges
    from a ``registry`` module into its own package (it imports its entries to fill itself)."""
    edges = {m: {t for t in ts if not (m.endswith(".registry")
                                       and t.startswith(m.rpartition(".")[0] + "."))}
             for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if layer_of(m) is None] == []


def test_no_module_imports_a_layer_above_it_or_beside_it():
    allowed = {layer: set(deps) | {layer} for layer, (_, deps) in LAYERS.items()}
    bad = [f"{m} ({layer_of(m)}) -> {t} ({layer_of(t)})"
           for m, targets in sorted(import_graph().items()) for t in sorted(targets)
           if layer_of(t) not in allowed[layer_of(m) or ""]]
    assert bad == []


def test_the_table_lists_lower_layers_first():
    """Every layer a layer may import stands before it in the table: the table orders the layers
    bottom to top, and no entry allows an import back up (or into an unknown layer)."""
    order = list(LAYERS)
    upward = [f"{layer} -> {dep}" for layer, (_, deps) in LAYERS.items() for dep in deps
              if dep not in LAYERS or order.index(dep) >= order.index(layer)]
    assert upward == []


def test_no_import_cycles_but_registries_importing_their_entries():
    assert cycles(import_graph()) == []


def test_the_checks_catch_a_cycle_and_a_forbidden_edge():
    graph = {"lkca.layers.a": {"lkca.models.b"}, "lkca.models.b": {"lkca.layers.a"},
             "lkca.models.registry": {"lkca.models.c"}, "lkca.models.c": {"lkca.models.registry"}}
    assert cycles(graph) == [{"lkca.layers.a", "lkca.models.b"}]
    assert layer_of("lkca.models.b") not in LAYERS["layers"][1]  # layers may not import models
    assert layer_of("lkca.train.engine") not in LAYERS["models"][1]  # nor models training
    assert layer_of("lkca.runtime.session") not in LAYERS["models"][1]
    # the segmentation models stand below the builder, which stands below their engine
    assert layer_of("lkca.builder") not in LAYERS["models"][1]
    assert layer_of("lkca.builder") in LAYERS[layer_of("lkca.seg.engine") or ""][1]
    assert layer_of("lkca.pretrained") not in LAYERS["builder"][1]
