"""Mutated media and model files give only the documented errors, never a crash, a hang or a
memory blow-up (the harness: tests/fuzzing.py; a longer run: bench/fuzz.py).

A fixed seed, so a failure names a case that reproduces: ``python bench/fuzz.py --seed 16
--only KIND --start INDEX --media 1`` (or ``--model 1``, ``--tokenizer 1``).
"""

from __future__ import annotations

import pytest

import fuzzing

SEED = 16
MAX_RSS = 768 << 20  # the worker's resident memory (imports, torch and a tokenizer: about 370 MB)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    fuzzing.prepare(workdir)
    return workdir


def _check(report: fuzzing.FuzzReport, count: int) -> None:
    assert report.bad == [], "\n".join(report.bad)
    assert report.cases == count
    assert set(report.outcomes) <= {"ok", *fuzzing.ALLOWED[report.kind]}
    assert report.peak_rss < MAX_RSS


def test_fuzz_smoke(seeds):
    """A few media cases in the fast suite, so the harness itself stays working."""
    _check(fuzzing.run_cases("media", SEED, 12, seeds, max_rss=MAX_RSS), 12)


@pytest.mark.slow
@pytest.mark.parametrize("kind,count", [("media", 300), ("model", 120), ("tokenizer", 16)])
def test_fuzz(seeds, kind, count):
    """436 cases in all, about 35 s on the project's machine."""
    report = fuzzing.run_cases(kind, SEED, count, seeds, start=100, max_rss=MAX_RSS)
    _check(report, count)
    # the mutations reach the error paths (and leave some media and models readable)
    assert sum(report.outcomes.values()) > report.outcomes.get("ok", 0)
    assert kind == "tokenizer" or report.outcomes.get("ok", 0) > 0
