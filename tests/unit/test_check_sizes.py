"""scripts/check_sizes.py: the repository is within its size limits, and an offender is caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts import check_sizes
from tests.support.env import REPO


def _function(name: str, lines: int, indent: str = "") -> str:
    """A function of exactly `lines` lines, its `def` line included."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 2))
    return f"{indent}def {name}() -> int:\n{body}{indent}    return 0\n"


def test_the_repository_passes_as_make_lint_runs_it() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/check_sizes.py"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, "")


def test_an_over_long_function_is_caught_and_one_at_the_limit_is_not(tmp_path: Path) -> None:
    module = tmp_path / "pkg" / "mod.py"
    module.parent.mkdir()
    module.write_text(
        _function("fits", check_sizes.MAX_FUNCTION_LINES)
        + "\n\nclass Holder:\n"
        + _function("too_long", check_sizes.MAX_FUNCTION_LINES + 1, indent="    ")
    )
    problems = check_sizes.check([tmp_path / "pkg"], root=tmp_path, allowed=frozenset())
    too_long_at = 1 + check_sizes.MAX_FUNCTION_LINES + 3
    assert problems == [f"pkg/mod.py:{too_long_at}: function Holder.too_long has 51 lines (at most 50)"]


def test_the_command_exits_1_with_one_line_per_offender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "big.py").write_text(
        _function("one", 60) + "".join(f"y{i} = {i}\n" for i in range(check_sizes.MAX_MODULE_LINES))
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_long.py").write_text(_function("test_left_aside", 80))

    assert check_sizes.main(["--root", str(tmp_path), str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "big.py:1: module has 460 lines (at most 400)",
        "big.py:1: function one has 60 lines (at most 50)",
    ]


def test_an_allowed_offender_passes_until_it_is_fixed(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text(_function("long", 70))
    allowed = frozenset({"mod.py:long"})
    assert check_sizes.check([module], root=tmp_path, allowed=allowed) == []

    module.write_text(_function("long", 10))
    [stale] = check_sizes.check([module], root=tmp_path, allowed=allowed)
    assert "take 'mod.py:long' out of the allowed offenders" in stale

    module.write_text(_function("renamed", 70))
    problems = check_sizes.check([module], root=tmp_path, allowed=allowed)
    assert problems == [
        "mod.py:1: function renamed has 70 lines (at most 50)",
        "mod.py: 'mod.py:long' is allowed but not there: take it out of the allowed offenders",
    ]
