"""Dependencies point one way: recommender <- index <- api. Checked by reading imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

LAYERS = {"recommender": 0, "index": 1, "api": 2}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["recommender", "index"])
def test_lower_layers_never_import_upward(package: str) -> None:
    offenders = []
    for module in sorted((REPO / package).rglob("*.py")):
        for name in imported_packages(module):
            if LAYERS.get(name, -1) > LAYERS[package]:
                offenders.append(f"{module.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_faiss_and_sentence_transformers_are_each_touched_by_one_module() -> None:
    users: dict[str, list[str]] = {"faiss": [], "sentence_transformers": []}
    for package in LAYERS:
        for module in (REPO / package).rglob("*.py"):
            for name in imported_packages(module) & set(users):
                users[name].append(str(module.relative_to(REPO)))
    assert users == {
        "faiss": ["index/vectors.py"],
        "sentence_transformers": ["recommender/embedding.py"],
    }
