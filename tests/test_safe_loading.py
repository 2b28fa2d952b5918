"""No package source can execute what a downloaded file contains.

Every ``torch.load`` passes ``weights_only=True`` (no unpickling of arbitrary objects), no call
enables ``trust_remote_code`` (no model code from the weights directory), and nothing unpickles
with ``pickle`` or ``numpy.load(allow_pickle=True)``. Checked on the syntax tree of every module,
so formatting or comments cannot hide or fake a call.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.configs import ROOT

PACKAGES = ("networks", "transforms", "bundle")
SOURCES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(node, ast.Call)]


def dotted(node: ast.expr) -> str:
    """``torch.load`` for the callee ``torch.load`` (names and attributes only)."""
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def keyword(call: ast.Call, name: str):
    """The constant value of keyword ``name``; None when absent; ``...`` when it is not a constant."""
    for item in call.keywords:
        if item.arg == name:
            return item.value.value if isinstance(item.value, ast.Constant) else ...
    return None


def unsafe_calls(path: Path, root: Path = ROOT) -> list[str]:
    """One line per unsafe call in ``path`` (named relative to ``root``)."""
    found = []
    for call in calls(path):
        name = dotted(call.func)
        where = f"{path.relative_to(root)}:{call.lineno} {name}"
        if name == "torch.load" and keyword(call, "weights_only") is not True:
            found.append(f"{where} without weights_only=True")
        if keyword(call, "trust_remote_code") not in (None, False):
            found.append(f"{where} with trust_remote_code")
        if name in ("pickle.load", "pickle.loads") or (
            name in ("np.load", "numpy.load") and keyword(call, "allow_pickle")
        ):
            found.append(f"{where} unpickles")
    return found


def test_the_package_sources_are_found():
    assert len(SOURCES) > 50 and all((ROOT / package / "__init__.py") in SOURCES for package in PACKAGES)


def test_no_package_source_loads_unsafely():
    assert [line for path in SOURCES for line in unsafe_calls(path)] == []


@pytest.mark.parametrize(
    "source",
    [
        "torch.load(path)",
        "torch.load(path, weights_only=False)",
        "AutoModel.from_pretrained(path, trust_remote_code=True)",
        "AutoTokenizer.from_pretrained(path, trust_remote_code=flag)",
        "pickle.load(handle)",
        "np.load(path, allow_pickle=True)",
    ],
)
def test_the_check_catches_unsafe_calls(tmp_path, source):
    module = tmp_path / "module.py"
    module.write_text(source + "\n")
    assert len(unsafe_calls(module, tmp_path)) == 1
