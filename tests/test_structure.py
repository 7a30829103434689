"""The launcher's layout: commands (launcher/*.py, one per make verb family) import only the
shared code in launcher/lib/, and nothing in launcher/lib/ imports a command. Then "where does
this change go?" has one answer, and no command drags another one's start-up cost in."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = REPO / "launcher"


def launcher_imports(path: Path) -> set[str]:
    """Every launcher module `path` imports, at any depth (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("launcher."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("launcher"):
            if node.module in ("launcher", "launcher.lib"):
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def commands() -> list[Path]:
    return sorted(p for p in LAUNCHER.glob("*.py") if p.name != "__init__.py")


def shared() -> list[Path]:
    return sorted(p for p in (LAUNCHER / "lib").glob("*.py") if p.name != "__init__.py")


def test_commands_import_only_shared_code() -> None:
    crossing = {
        path.stem: sorted(m for m in launcher_imports(path) if not m.startswith("launcher.lib.")) for path in commands()
    }
    assert {name: found for name, found in crossing.items() if found} == {}


def test_shared_code_imports_no_command() -> None:
    crossing = {
        path.stem: sorted(m for m in launcher_imports(path) if not m.startswith("launcher.lib.")) for path in shared()
    }
    assert {name: found for name, found in crossing.items() if found} == {}


def test_every_command_is_a_program() -> None:
    """A module beside the commands that is not one belongs in launcher/lib/."""
    for path in commands():
        text = path.read_text(encoding="utf-8")
        assert 'if __name__ == "__main__":' in text, f"{path.name} is not a command; move it to launcher/lib/"


def test_shared_modules_are_not_make_verbs() -> None:
    """Only local_compose runs as a program from lib/ (the SDK executes it by path)."""
    programs = [p.name for p in shared() if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")]
    assert programs == ["local_compose.py"]


def test_the_import_checker_sees_every_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import launcher.train\nfrom launcher import endpoint\nfrom launcher.lib import errors\n"
        "def f():\n    from launcher.registry import pick\n",
        encoding="utf-8",
    )
    assert launcher_imports(sample) == {
        "launcher.train",
        "launcher.endpoint",
        "launcher.lib.errors",
        "launcher.registry",
    }


def test_shared_modules_form_no_import_cycle() -> None:
    """A cycle would make the order of imports matter, and the layers meaningless."""
    graph = {
        path.stem: {m.removeprefix("launcher.lib.") for m in launcher_imports(path) if m.startswith("launcher.lib.")}
        for path in shared()
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


# The modules that call the SageMaker Python SDK: a v3 back end replaces these and nothing else.
SDK_MODULES = {"sdk", "training", "processing", "batch_transform", "hosting", "pipeline"}


def sdk_imports(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sagemaker" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sagemaker":
            return True
    return False


def test_only_the_sdk_modules_call_the_sdk() -> None:
    """SDK v2 is in maintenance until July 2027: its calls stay in a few shared modules."""
    assert {p.stem for p in commands() if sdk_imports(p)} == set()
    assert {p.stem for p in shared() if sdk_imports(p)} == SDK_MODULES
