"""The layout's rules, checked on the source: the core imports no OpenFlow framework (nor the
event loop or web stack they bring), and nothing outside the core."""

import ast
import pathlib

CORE = pathlib.Path(__file__).resolve().parents[2] / "segctl" / "core"
FORBIDDEN = ("ryu", "os_ken", "eventlet", "webob", "segctl")  # `segctl`: reach the core's neighbours


def imports_of(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file; relative imports keep their leading dots."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def test_nothing_under_the_core_imports_a_framework_or_leaves_the_core():
    offences = [
        f"{path.name}:{line}: {module}"
        for path in sorted(CORE.glob("*.py"))
        for line, module in imports_of(path)
        if module.split(".")[0] in FORBIDDEN or module.startswith("..")
    ]
    assert offences == []


def test_the_check_sees_a_framework_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom ryu.lib import hub\nfrom ..app import SegctlApp\nfrom .flows import Kind\n")
    assert imports_of(sample) == [(1, "os"), (2, "ryu.lib"), (3, "..app"), (4, ".flows")]
