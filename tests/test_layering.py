"""The package's layers point one way, and no module imports another that
imports it back (module-level and function-level imports alike): a new
cycle or an import from a lower layer into a higher one fails here, naming
the modules. The layers are documented in keras_googlenet/__init__.py."""
import ast
import pathlib

import helpers as fx

PACKAGE = pathlib.Path(fx.ROOT) / "keras_googlenet"
# Each subpackage (or top-level module) and its layer: a layer imports only
# from the layers below it; the packages of one layer do not import each other.
LAYERS = {
    "backends": 0, "hardware": 0, "checks": 0, "files": 0,
    "models": 1, "weights": 1,
    "data": 2,
    # The KerasHub classes (optional): they build on the model only.
    "hub": 2,
    "inference": 3,
    "serving": 4,
    "train": 5, "explain": 5,
    "cli": 6, "__main__": 7,
    # Data files only (the named recipes).
    "recipes": 0,
}
# Within layer 1 the model builder loads published weights (GoogLeNet(weights=...)),
# and the weight converters read the architecture: both ways at package
# level, never a cycle of modules (checked below).
ONE_LAYER = {("models", "weights"), ("weights", "models")}


def _modules():
    """{dotted module name: path} of every module of the package."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(name, path, modules):
    """The package's modules that `name` imports, anywhere in its code."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(parent + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _part(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: keras_googlenet/__init__.py


def test_every_module_has_a_layer():
    assert {_part(m) for m in _modules()} - {None} - set(LAYERS) == set()


def test_layers_point_one_way():
    wrong = []
    for module, targets in _graph().items():
        source = _part(module)
        for target in targets:
            pair = (source, _part(target))
            if (source is None or pair[1] is None or pair[0] == pair[1]
                    or pair in ONE_LAYER):
                continue
            if LAYERS[pair[0]] <= LAYERS[pair[1]]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports from a lower layer into a higher one:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = _graph()
    # Tarjan's strongly connected components: any with two or more modules is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
