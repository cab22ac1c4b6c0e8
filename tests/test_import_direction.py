"""The tree is the architecture: imports point down, Airflow stays in dags/, the product never runs the fake.

Layers, top to bottom (a module may import its own package and anything in a lower layer; two
packages of the same layer never import each other):

    6  runai_extract.cli
    5  runai_extract.stream_runner
    4  runai_extract.audit, runai_extract.usage, runai_extract.compliance, runai_extract.report
    3  runai_extract.api, runai_extract.ledger
    2  warehouse
    1  transforms
    0  runai_extract (the package root), runai_extract.core

``runai_extract.fake`` sits beside the tree: it imports only core, and only cli/ (fake-server,
the demo) may import it. dags/ may import any layer but cli/ (the demo driver excepted). Every
import counts, including the lazy ones inside functions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS: dict[str, int] = {
    "runai_extract.cli": 6,
    "runai_extract.stream_runner": 5,
    "runai_extract.audit": 4,
    "runai_extract.usage": 4,
    "runai_extract.compliance": 4,
    "runai_extract.report": 4,
    "runai_extract.api": 3,
    "runai_extract.ledger": 3,
    "warehouse": 2,
    "transforms": 1,
    "runai_extract.core": 0,
    "runai_extract": 0,
}
FAKE = "runai_extract.fake"
OURS = ("runai_extract", "transforms", "warehouse")
DEMO_DRIVER = "dags.demo_airflow"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted
    line: int


def package_of(dotted: str) -> str | None:
    """The longest LAYERS key that ``dotted`` is or lies under."""
    best = None
    for name in LAYERS:
        if (dotted == name or dotted.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    return best


def imports_in(path: Path, root: Path) -> list[Import]:
    module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(Import(module, node.module, node.lineno))
            # `from runai_extract import fake` names a package through its parent
            found += [Import(module, f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return found


def violations(root: Path) -> list[str]:
    """Every import that breaks a rule of the module docstring, as readable lines."""
    problems = []
    for path in sorted(root.glob("**/*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("tests", "bench", ".venv") or rel.parts[0].startswith("."):
            continue
        reported: set[int] = set()  # one line per import statement
        for imp in imports_in(path, root):
            problem = _judge(imp, rel.parts[0])
            if problem and imp.line not in reported:
                reported.add(imp.line)
                problems.append(f"{rel}:{imp.line}: {imp.module} imports {imp.target}: {problem}")
    return problems


def _judge(imp: Import, top: str) -> str | None:
    if imp.target == "airflow" or imp.target.startswith("airflow."):
        return None if top == "dags" else "Airflow is imported only under dags/"
    if not imp.target.startswith(OURS):
        return None
    source_is_fake = imp.module == FAKE or imp.module.startswith(FAKE + ".")
    target_is_fake = imp.target == FAKE or imp.target.startswith(FAKE + ".")
    if source_is_fake:
        ok = (
            target_is_fake
            or package_of(imp.target) in ("runai_extract.core",)
            or imp.target == "runai_extract"
        )
        return None if ok else "the fake imports only core"
    if target_is_fake:
        allowed = imp.module.startswith("runai_extract.cli") or imp.module == DEMO_DRIVER
        return None if allowed else "only cli/ (fake-server, the demo) may import the fake"
    if top == "dags":
        calls_cli = package_of(imp.target) == "runai_extract.cli"
        return "DAG files never import the cli" if calls_cli and imp.module != DEMO_DRIVER else None
    return _judge_layers(imp)


def _judge_layers(imp: Import) -> str | None:
    source, target = package_of(imp.module), package_of(imp.target)
    if source is None or target is None or source == target:
        return None
    if LAYERS[target] > LAYERS[source]:
        return f"layer {LAYERS[source]} ({source}) must not import up to layer {LAYERS[target]} ({target})"
    if LAYERS[target] == LAYERS[source] and LAYERS[source] > 0:
        return f"{source} and {target} are siblings of one layer and must not import each other"
    return None


def test_the_tree_imports_only_downwards() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("where", "code", "rule"),
    [
        (
            "runai_extract/ledger/x.py",
            "from runai_extract.audit.sync import sync_audit\n",
            "must not import up",
        ),
        ("transforms/x.py", "import warehouse.build\n", "must not import up"),
        ("runai_extract/audit/x.py", "def f():\n    from runai_extract.usage import workloads\n", "siblings"),
        ("runai_extract/ledger/x.py", "from airflow.sdk import task\n", "Airflow is imported only"),
        ("warehouse/x.py", "from runai_extract.fake import FakeConfig\n", "only cli/"),
        (
            "runai_extract/fake/x.py",
            "from runai_extract.ledger import verify\n",
            "the fake imports only core",
        ),
        ("dags/x.py", "from runai_extract.cli.main import app\n", "DAG files never import the cli"),
    ],
)
def test_each_forbidden_import_is_caught(tmp_path: Path, where: str, code: str, rule: str) -> None:
    """The checker itself can fail: plant one forbidden import in a copy-shaped tree."""
    target = tmp_path / where
    target.parent.mkdir(parents=True)
    target.write_text(code)
    found = violations(tmp_path)
    assert len(found) == 1 and rule in found[0], found


def test_allowed_imports_pass(tmp_path: Path) -> None:
    for where, code in [
        ("runai_extract/cli/x.py", "from runai_extract.fake import serve_forever\nimport warehouse\n"),
        ("runai_extract/audit/x.py", "from runai_extract.ledger.watermarks import StateStore\n"),
        ("transforms/x.py", "from runai_extract.core.errors import StorageError\n"),
        ("dags/x.py", "from airflow.sdk import dag\nfrom runai_extract.stream_runner import sync_stream\n"),
    ]:
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text(code)
    assert violations(tmp_path) == []
