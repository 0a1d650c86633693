"""Fail when a module or a function of the service grows past what one can read at once.

    .venv/bin/python scripts/check_sizes.py [--allow ENTRY ...] [PATH ...]

A module (in app/, sagas/, tasks/ by default) may have at most MAX_MODULE_LINES lines, and a
function or method at most MAX_FUNCTION_LINES, from its `def` line to its last line (decorators
aside). Alembic's migrations and the tests are left aside. Each offender is one line on stdout,
and the exit status is 1 if there is any.

KNOWN_OFFENDERS (this repository's) and those given with --allow are let through: a module as
"path", a function as "path:qualified.name", paths relative to the repository (or --root). An
entry that is within the limits again, or no longer there, is reported too, so that it is taken
out.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "sagas", "tasks")
LEFT_ASIDE = (("alembic", "versions"), ("tests",))

KNOWN_OFFENDERS: frozenset[str] = frozenset()


def modules(paths: Iterable[Path], root: Path) -> Iterator[tuple[Path, str]]:
    """The Python files under `paths`, sorted, each with its path relative to `root`; without the
    ones left aside."""
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            name = _relative(file, root)
            if not _left_aside(name.split("/")):
                yield file, name


def _left_aside(parts: Sequence[str]) -> bool:
    return any(tuple(parts[: len(aside)]) == aside for aside in LEFT_ASIDE)


def _functions(
    body: Iterable[ast.AST], prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method, nested ones too, with its qualified name (Class.method)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node.body, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                yield from _functions(getattr(node, field, ()), prefix)


def sizes(file: Path, name: str) -> Iterator[tuple[str, int, int, int]]:
    """(entry, line, length, limit) for the module `name` names and for each of its functions."""
    source = file.read_text(encoding="utf-8")
    yield name, 1, len(source.splitlines()), MAX_MODULE_LINES
    for qualname, node in _functions(ast.parse(source, filename=str(file)).body):
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        yield f"{name}:{qualname}", node.lineno, length, MAX_FUNCTION_LINES


def check(paths: Iterable[Path], root: Path = REPO, allowed: frozenset[str] = KNOWN_OFFENDERS) -> list[str]:
    """One line per module or function over its limit, and per allowed entry that is no longer
    over it or no longer there."""
    paths = list(paths)
    problems: list[str] = []
    seen: set[str] = set()
    for file, name in modules(paths, root):
        for entry, line, length, limit in sizes(file, name):
            seen.add(entry)
            kind = "module" if entry == name else f"function {entry.partition(':')[2]}"
            if length > limit and entry not in allowed:
                problems.append(f"{name}:{line}: {kind} has {length} lines (at most {limit})")
            elif length <= limit and entry in allowed:
                problems.append(
                    f"{name}:{line}: {kind} has {length} lines, within {limit}: take {entry!r} "
                    "out of the allowed offenders"
                )
    scanned = [_relative(path, root) for path in paths]
    for entry in sorted(allowed - seen):
        module = entry.partition(":")[0]
        if any(module == where or module.startswith(where + "/") for where in scanned):
            problems.append(
                f"{module}: {entry!r} is allowed but not there: take it out of the allowed offenders"
            )
    return problems


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: app sagas tasks)")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ENTRY",
        help="also let this offender through: path, or path:qualified.name (repeatable)",
    )
    parser.add_argument("--root", type=Path, default=REPO, help="paths are named relative to it")
    args = parser.parse_args(argv)
    paths = args.paths or [args.root / package for package in PACKAGES]
    known = KNOWN_OFFENDERS if args.root.resolve() == REPO else frozenset()  # this repository's
    problems = check(paths, args.root, known | frozenset(args.allow))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
