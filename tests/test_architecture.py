"""The codec's import direction (docs/ARCHITECTURE.md, "Codec layers"): imports only point down.

An import graph built with `ast` over every file of ``codec/`` (module-level and function-level
imports alike), checked against the layer table below, plus a subprocess that imports the
torch-free entry points for real and looks at ``sys.modules``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODEC = ROOT / "codec"

#: bottom → top. A module may import its own layer and the layers below it, never one above.
#: The longest matching prefix decides a module's layer.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("codec.errors", "codec.options")),
    ("tables", ("codec.models.specs", "codec.quant", "codec.device")),
    ("container", ("codec.container",)),
    ("components", ("codec.entropy", "codec.imageio", "codec.baselines", "codec.resources", "codec.weights",
                    "codec.metrics", "codec.models", "codec.tiling", "codec.memory", "codec.seed_codec")),
    ("decoder", ("codec.decoder",)),
    ("encoder", ("codec.encoder",)),
    ("entry", ("codec", "codec.__main__", "codec.cli", "codec.fetch")),
    ("tools", ("codec.tools",)),
)
#: the web process imports these: no torch, at module level, anywhere below them
TORCH_FREE = ("codec", "codec.errors", "codec.options", "codec.container", "codec.models.specs",
              "codec.baselines", "codec.seed_codec")
#: (importer, imported) edges allowed to point up, each inside a function (lazy) and documented
ALLOWED_UP = {("codec.cli", "codec.tools.bench")}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    lazy: bool  # inside a function body
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files() -> dict[str, Path]:
    return {_module_name(p): p for p in CODEC.rglob("*.py")}


def _imports(name: str, path: Path, modules: set[str]) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> Iterator[Edge]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: never executed
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Edge(name, alias.name, inner, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    yield Edge(name, sub if sub in modules else base, inner, child.lineno)
            yield from visit(child, inner, type_only)

    yield from visit(tree, False, False)


def _graph() -> list[Edge]:
    files = _files()
    return [e for name, path in files.items() for e in _imports(name, path, set(files))]


def _layer(module: str) -> int:
    best, rank = -1, -1
    for i, (_label, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


GRAPH = _graph()


def test_every_codec_module_has_a_layer():
    missing = sorted(name for name in _files() if _layer(name) < 0)
    assert not missing, f"add these modules to LAYERS (and to docs/ARCHITECTURE.md): {missing}"


def test_the_graph_sees_imports_at_every_level():
    """Guard against a parser that silently finds nothing: known edges of each kind are present."""
    edges = {(e.importer, e.imported, e.lazy) for e in GRAPH}
    assert ("codec.decoder", "codec.tiling", False) in edges  # module level
    assert ("codec", "codec.encoder.encode", True) in edges  # inside a function
    assert ("codec.container.header", "codec.container.wire", False) in edges  # sibling module


def test_codec_never_imports_django_or_gallery():
    bad = [e for e in GRAPH if e.imported.split(".")[0] in {"django", "gallery", "config", "celery"}]
    assert not bad, bad


def test_the_library_never_imports_its_tools():
    bad = [e for e in GRAPH
           if e.imported.startswith("codec.tools") and not e.importer.startswith("codec.tools")
           and not ((e.importer, e.imported) in ALLOWED_UP and e.lazy)]
    assert not bad, bad


def test_imports_only_point_down():
    up = []
    for e in GRAPH:
        if not e.imported.startswith("codec"):
            continue
        if (e.importer, e.imported) in ALLOWED_UP and e.lazy:
            continue
        src, dst = _layer(e.importer), _layer(e.imported)
        if e.imported == "codec":  # `import codec` from inside: the package itself is the top API
            dst = _layer("codec")
        if dst > src:
            up.append(f"{e.importer}:{e.line} ({LAYERS[src][0]}) imports {e.imported} ({LAYERS[dst][0]})")
    assert not up, "\n".join(up)


def _module_level_closure(roots: tuple[str, ...]) -> dict[str, list[str]]:
    """Every module reached from ``roots`` by module-level imports (with the packages on the way),
    mapped to the path that reached it."""
    files = _files()
    eager: dict[str, set[str]] = {}
    for e in GRAPH:
        if not e.lazy:
            eager.setdefault(e.importer, set()).add(e.imported)
    seen: dict[str, list[str]] = {}
    stack = [(r, [r]) for r in roots]
    while stack:
        mod, path = stack.pop()
        if mod in seen:
            continue
        seen[mod] = path
        parts = mod.split(".")
        parents = [".".join(parts[:i]) for i in range(1, len(parts))]
        for nxt in [*eager.get(mod, ()), *parents]:
            if nxt in files or not nxt.startswith("codec"):
                stack.append((nxt, [*path, nxt]))
    return seen


@pytest.mark.parametrize("root", TORCH_FREE)
def test_torch_free_modules_reach_no_torch_at_import(root):
    reached = _module_level_closure((root,))
    heavy = {m: p for m, p in reached.items() if m.split(".")[0] in {"torch", "torchvision", "diffusers"}}
    assert not heavy, f"{root} imports torch at module level via " + " → ".join(next(iter(heavy.values())))


def test_import_codec_and_info_leave_torch_out_in_a_fresh_process():
    code = (
        "import sys, numpy as np\n"
        "import codec, codec.container, codec.errors, codec.options, codec.baselines\n"
        "from codec.container import Header, pack\n"
        "from codec.quant import QuantParams\n"
        "h = Header(model_id=1, width=16, height=16, quant=QuantParams(4, (-1.0,) * 4, (1.0,) * 4))\n"
        "meta = codec.info(pack(h, bytes(16)))\n"
        "assert meta['width'] == 16 and meta['model'] == 'taesd', meta\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'django'))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_model_factories_name_existing_backend_classes():
    """The factory column of `codec.models.specs` is data (no import from the table layer up to the
    backends): every family names a module file under codec/models that defines the class."""
    from codec.models.specs import _SPECS, FACTORIES

    assert {s.family for s in _SPECS} <= set(FACTORIES)
    files = _files()
    for target, location_arg in FACTORIES.values():
        module, _, cls = target.partition(":")
        tree = ast.parse(files[module].read_text(encoding="utf-8"))
        init = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
        ctor = next(n for n in init.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        assert location_arg in [a.arg for a in ctor.args.args], (target, location_arg)
