"""The source speaks for itself: no issue numbers, nothing outside the repository, and the
benchmark runner that ``make bench`` starts knows every benchmark script."""

from __future__ import annotations

import re
import runpy
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

ISSUE_NUMBER = re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE)
OUTSIDE_PATH = re.compile(r"\.\./+shared\b|/work/shared\b|\.\./+\.\./")
DOCUMENT_NAME = re.compile(r"(?<![\w/.-])([\w/.-]*[A-Za-z0-9_-]\.md)\b")


def source_lines() -> list[tuple[str, int, str]]:
    """``(path, line number, line)`` of every text file under src/."""
    lines = []
    for path in sorted(SRC.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        relative = str(path.relative_to(ROOT))
        lines += [(relative, number, line) for number, line in enumerate(text.splitlines(), 1)]
    return lines


def repository_files() -> set[str]:
    """The names of the files git tracks (or would, once added) in this repository."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True, timeout=30)
    return {Path(name).name for name in listed.stdout.splitlines()}


def offending(pattern: re.Pattern[str]) -> list[str]:
    return [f"{path}:{number}: {line.strip()}" for path, number, line in source_lines()
            if pattern.search(line)]


def test_no_source_line_mentions_an_issue_number() -> None:
    """No file under src/ says "issue <number>": the code explains itself, not a tracker."""
    found = offending(ISSUE_NUMBER)
    assert not found, "\n".join(found)


def test_no_source_line_points_outside_the_repository() -> None:
    """No file under src/ refers to a path outside the repository (``../shared`` and the like)."""
    found = offending(OUTSIDE_PATH)
    assert not found, "\n".join(found)


def test_every_document_named_in_the_source_is_in_the_repository() -> None:
    """A document that src/ cites by name (``*.md``) is a file of this repository, so a reader
    of the code can open it."""
    present = repository_files()
    missing = [f"{path}:{number}: {name}" for path, number, line in source_lines()
               for name in DOCUMENT_NAME.findall(line) if Path(name).name not in present]
    assert not missing, "\n".join(missing)


def test_the_benchmark_runner_knows_every_benchmark_script() -> None:
    """``make bench`` runs benchmarks/run_all.py, which lists every benchmarks/bench_*.py."""
    assert "benchmarks/run_all.py" in (ROOT / "Makefile").read_text()
    run_all = runpy.run_path(str(ROOT / "benchmarks" / "run_all.py"), run_name="run_all")
    listed = {bench.script for bench in run_all["BENCHMARKS"]}
    assert listed == set((ROOT / "benchmarks").glob("bench_*.py"))
