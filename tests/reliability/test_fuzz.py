"""Bitstream fuzzing of ``codec.decode`` and ``codec.info`` (the full decoder, model included).

The bitstream developer's hypothesis tests (tests/codec/test_bitstream_fuzz.py) cover the parser
and the entropy decoders in-process; this adds the whole ``decode`` path, crash isolation (a child
process, restarted after a segfault/OOM/hang), a time bound per case and an RSS bound, and replays
the shared regression corpus (tests/codec/corpus/) through the same harness.

``make test`` runs the corpus and a few hundred cases; ``make reliability`` 10 000 cases
(``RELIABILITY_FUZZ_CASES``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from . import fuzzing
from .fuzz_runner import FuzzReport, run_fuzz

CORPUS = Path(__file__).resolve().parents[1] / "codec" / "corpus"
FULL_CASES = int(os.environ.get("RELIABILITY_FUZZ_CASES", "10000"))
QUICK_CASES = int(os.environ.get("RELIABILITY_FUZZ_QUICK", "300"))
TIME_LIMIT_S = float(os.environ.get("RELIABILITY_FUZZ_TIME_LIMIT", "10"))
MEM_LIMIT_MB = float(os.environ.get("RELIABILITY_FUZZ_MEM_LIMIT", "512"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability"


def describe(report: FuzzReport) -> str:
    lines = [f"{f.get('index')}: {f.get('what')}: {f.get('failure')}" for f in report.all_failures[:10]]
    return f"{len(report.all_failures)} failure(s):\n" + "\n".join(lines)


def test_fuzzer_writer_matches_the_format():
    """The fuzzer's unchecked writer reproduces valid streams exactly (else it fuzzes a stale format)."""
    seeds = fuzzing.synthetic_seeds(random.Random(0))
    assert len(seeds) >= 10
    for data in seeds:
        assert fuzzing.fields_of(data).to_bytes() == data


def test_our_corpus_files_are_current():
    """tests/codec/corpus/fuzz_*.bin are what fuzzing.regression_corpus() makes (regenerate if not)."""
    made = {f"fuzz_{k.replace('-', '_')}.bin": v for k, v in fuzzing.regression_corpus().items()}
    on_disk = {p.name: p.read_bytes() for p in CORPUS.glob("fuzz_*.bin")}
    assert on_disk == made, "run: python -c 'from tests.reliability import fuzzing as f; f.write_corpus(...)'"


def test_corpus_replay_through_decode(tmp_path, reliability_record):
    """Every regression-corpus stream through info + decode: only CodecError, in time and memory."""
    report = run_fuzz(tmp_path, corpus=CORPUS, time_limit=TIME_LIMIT_S, mem_limit_mb=MEM_LIMIT_MB)
    files = [p for p in CORPUS.glob("*.bin")]
    assert report.cases == len(files) >= 20
    reliability_record(files=report.cases, **{k: v for k, v in report.metrics().items() if k != "cases"})
    assert report.all_failures == [], describe(report)
    ok_files = {p.name for p in files if p.name.startswith("ok_")}
    assert report.outcomes.get("decoded", 0) >= len(ok_files)


def test_quick_fuzz(tmp_path, reliability_record):
    """A few hundred mutated streams (the fast part of the fuzz run, in ``make test``)."""
    report = run_fuzz(tmp_path, seed=7, cases=QUICK_CASES, time_limit=TIME_LIMIT_S, mem_limit_mb=MEM_LIMIT_MB)
    reliability_record(**report.metrics())
    assert report.cases == QUICK_CASES
    assert report.all_failures == [], describe(report)
    assert report.info_ok > QUICK_CASES // 20  # the mutations get past the CRC and the parser


@pytest.mark.long
def test_fuzz_10000_streams(tmp_path, reliability_record):
    """10 000 mutated/truncated/random streams through info + decode: only CodecError, in time and RSS."""
    out = ARTIFACTS / "fuzz"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    report = run_fuzz(out, seed=2026, cases=FULL_CASES, time_limit=TIME_LIMIT_S, mem_limit_mb=MEM_LIMIT_MB)
    reliability_record(**report.metrics(), time_limit_s=TIME_LIMIT_S, mem_limit_mib=MEM_LIMIT_MB)
    assert report.cases == FULL_CASES
    assert report.info_ok > FULL_CASES // 20
    assert report.outcomes.get("decoded", 0) > 0
    assert report.all_failures == [], describe(report) + f"\n(cases saved under {out}/failures)"
