"""Dependencies point one way, read from each module's imports with `ast`:
recommender <- index <- api <- bench <- console, and inside `index` and `api` the rooms
point one way too. No two source modules share a file name."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from tests.support.helpers import REPO

LAYERS = {"recommender": 0, "index": 1, "api": 2, "bench": 3, "console": 4}
#: Rooms of a package, lowest first: a room may import its own and lower rooms only.
ROOMS = {
    "index": {"index_errors": 0, "state": 1, "versions": 2, "serving": 3, "evaluation": 4},
    "api": {"stores": 0, "serving": 1, "middleware": 2, "access": 2, "routes": 3, "cli": 4},
}


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
