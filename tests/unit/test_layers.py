"""Layers import only downward (docs/architecture.md): the entry point wires the
components; components use user data, the common facts and the config model; user data
uses the common facts and the config model; the common facts use the config model; the
config model uses none of ours. AWS and Azure never import each other. The policy pack
stands alone (it runs from its own directory with `pulumi preview --policy-pack`), and
nothing in the program or the pack depends on the offline toolkit (`swarmstack` beside
its config model), which may use both. Read from the source with `ast`, not by
importing it: an import inside a function counts too.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("components", "userdata", "swarmstack", "policies")

# layer -> the layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "entry point": {"components.aws", "components.azure", "components.common", "userdata", "config"},
    "components.aws": {"components.common", "userdata", "config"},
    "components.azure": {"components.common", "userdata", "config"},
    "userdata": {"components.common", "config"},
    "components.common": {"config"},
    "config": set(),
    "policies": set(),
    "toolkit": {"config", "policies"},
}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "__main__":
        return "entry point"
    if parts[0] == "components":
        return ".".join(parts[:2]) if len(parts) > 1 else "components.common"
    if parts[0] == "swarmstack":
        return "config" if len(parts) > 1 and parts[1] == "config" else "toolkit"
    return parts[0]


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module of ours that `path` imports, relative imports resolved."""
    module = module_of(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from package import module` imports the module; `from module import name` the module.
            submodules = [f"{base}.{a.name}" for a in node.names if is_module(f"{base}.{a.name}")]
            found |= set(submodules) if submodules else {base}
    return {name for name in found if name.split(".")[0] in OURS}


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def sources() -> list[Path]:
    files = [ROOT / "__main__.py"]
    for top in OURS:
        files += sorted((ROOT / top).rglob("*.py"))
    return [f for f in files if f.exists()]


def violations() -> list[str]:
    wrong = []
    for path in sources():
        mine = layer(module_of(path))
        for name in sorted(imports(path)):
            theirs = layer(name)
            if theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"{path.relative_to(ROOT)} ({mine}) imports {name} ({theirs})")
    return wrong


def fresh_violations(root: Path = ROOT) -> list[str]:
    """`violations()` of the tree at `root` in a fresh interpreter. In a process that has run
    Pulumi programs, CPython 3.11.7's `ast.parse` of a large file can fail with "AST
    constructor recursion depth mismatch" (seen here after the Azure engine tests), so the
    pytest process's own AST state is not trusted."""
    program = (f"import json, sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
               f"import test_layers; test_layers.ROOT = Path({str(root)!r}); "
               "print(json.dumps(test_layers.violations()))")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=root, timeout=120)
    assert result.returncode == 0, result.stderr
    found: list[str] = json.loads(result.stdout)
    return found


def test_layers_import_only_downward() -> None:
    assert fresh_violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The check is not vacuous: the layer of each kind of file, and an import that goes up."""
    assert layer("components.aws.nodes") == "components.aws"
    assert layer("swarmstack.config.model") == "config" and layer("swarmstack.plan") == "toolkit"
    assert "swarmstack.plan" not in ALLOWED["policies"] and "toolkit" not in ALLOWED["userdata"]
    assert any("userdata/params.py" in str(p) for p in sources())
    assert "components.common.hooks" in imports(ROOT / "userdata" / "params.py")
    # In a copy of the sources: a probe in the tree itself is seen by whatever reads the tree
    # meanwhile (test_lint's ruff, in another xdist worker, failed on it).
    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    for top in OURS:
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "venv"))
    (tmp_path / "userdata" / "_layers_probe.py").write_text(
        "from components.aws import cluster\nfrom swarmstack import plan\n")
    found = fresh_violations(tmp_path)
    assert any("_layers_probe.py (userdata) imports components.aws" in v for v in found), found
    assert any("_layers_probe.py (userdata) imports swarmstack.plan (toolkit)" in v for v in found), found
