"""Dependencies point one way, read from each module's imports with `ast` (imports inside
functions too): recommender <- index <- api <- bench <- console; inside `recommender`, `index`
and `api` the rooms (sub-packages, or top-level modules) point one way too; no module imports
itself back through others. No two source modules share a file name. A serving worker starts
without the nightly build's stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.helpers import REPO

LAYERS = {"recommender": 0, "index": 1, "api": 2, "bench": 3, "console": 4}
#: Rooms of a package, lowest first: a room may import its own and lower rooms only.
#: Rooms of equal rank may import each other (the cycle test still refuses a loop).
ROOMS = {
    "recommender": {
        # bases that import nothing of ours
        "errors": 0, "fault_points": 0, "setting_group": 0, "mapped_files": 0,
        "remembered_keys": 0,
        # the article model, text analysis, encoders, overrides
        "articles": 1, "text_analysis": 1, "encoding": 1, "overrides": 1,
        # ranking, its signals and fallbacks, offline evaluation, reading feeds of every kind
        "ranking": 2, "proper_nouns": 2, "tfidf": 2, "bm25": 2, "signals": 2, "evaluation": 2,
        "fallbacks": 2, "click_statistics": 2,
        "ingest": 2,
        # the one reader of the environment, composing every room's group
        "settings": 3,
    },
    "index": {"index_errors": 0, "state": 1, "versions": 2, "serving": 3, "evaluation": 4},
    "api": {
        # shared pieces of HTTP that import no room
        "responses": 0, "schemas": 0, "templating": 0, "openapi_examples": 0,
        "stores": 0, "event_log": 0, "serving": 1,
        # `Services` (what routes depend on), the middleware, access checks, error pages
        "deps": 2, "middleware": 2, "access": 2, "error_handlers": 2,
        "routes": 3, "app": 4, "worker_app": 4, "cli": 5,
    },
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def source_modules() -> list[Path]:
    return sorted(module for package in LAYERS for module in (REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", list(LAYERS))
def test_layers_never_import_upward(package: str) -> None:
    offenders = []
    for module in sorted((REPO / package).rglob("*.py")):
        for name in imported_modules(module):
            if LAYERS.get(name.split(".")[0], -1) > LAYERS[package]:
                offenders.append(f"{module.relative_to(REPO)} imports {name}")
    assert offenders == []


@pytest.mark.parametrize("package", list(ROOMS))
def test_rooms_never_import_upward(package: str) -> None:
    rooms = ROOMS[package]
    offenders = []
    for module in sorted((REPO / package).rglob("*.py")):
        room = module.relative_to(REPO / package).parts[0].removesuffix(".py")
        if room not in rooms:
            continue
        for name in imported_modules(module):
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1 and rooms.get(parts[1], -1) > rooms[room]:
                offenders.append(f"{module.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_every_module_of_a_ranked_package_is_in_a_room() -> None:
    unranked = []
    for module in source_modules():
        package, *rest = module.relative_to(REPO).parts
        room = rest[0].removesuffix(".py") if rest else "__init__"
        if package in ROOMS and room != "__init__" and room not in ROOMS[package]:
            unranked.append(str(module.relative_to(REPO)))
    assert unranked == []


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles_not_even_lazy_ones() -> None:
    modules = {module_name(path): path for path in source_modules()}
    graph = {name: imported_targets(path, name, modules) for name, path in modules.items()}
    cycles = [sorted(component) for component in strongly_connected(graph) if len(component) > 1]
    assert cycles == []


def imported_targets(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The modules of `modules` that the module `name` at `path` imports."""
    aliases = from_names(path)
    return {
        target
        for imported in imported_modules(path)
        # `from package import module` names the module through its package
        for target in (imported, *(f"{imported}.{alias}" for alias in aliases))
        if target in modules and target != name
    }


def from_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
        for alias in node.names
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of `graph`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_no_two_source_modules_share_a_file_name() -> None:
    names = Counter(
        m.name for m in source_modules() if m.name not in {"__init__.py", "__main__.py"}
    )
    assert [name for name, count in names.items() if count > 1] == []


def test_faiss_and_sentence_transformers_are_each_touched_by_one_module() -> None:
    users: dict[str, list[str]] = {"faiss": [], "sentence_transformers": []}
    for module in source_modules():
        for name in {n.split(".")[0] for n in imported_modules(module)} & set(users):
            users[name].append(str(module.relative_to(REPO)))
    assert users == {
        "faiss": ["index/versions/vector_index.py"],
        "sentence_transformers": ["recommender/encoding/sentence_transformer_encoder.py"],
    }


#: What a serving worker must not import at start: each costs a fraction of a second in every
#: worker (and in every server a test starts), and serving uses none of them.
NOT_SERVED = (
    "index.versions.reindex_pipeline",  # the nightly build, and every feed reader it imports
    "feedparser",
    "trafilatura",
    "scipy.stats",
    "torch",
    "sentence_transformers",
    "ray",
)


def test_a_serving_worker_starts_without_the_build_stack() -> None:
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, api.app; print(*sys.modules)"],
        cwd=REPO, check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    assert "api.app" in imported
    assert [name for name in NOT_SERVED if name in imported] == []
