"""Fuzzing the layer with garbage arguments and inputs: 10,000 seeded cases.

generator.py makes the cases, oracle.py judges outputs, worker.py runs a batch of
1,000 cases in a subprocess (see its docstring for what each case must end in).
This file runs the batches, two at a time, and checks their outcomes.

Every test here is independent of the others and of their order: the batches'
results live in a session fixture that runs a batch the first time any test asks
for it (starting all the batches this session selected, so that they overlap).
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import threading

import pytest

import worker
from generator import BATCHES, CASES_PER_BATCH, FAMILIES, TOTAL_CASES, family_of, make_case

BATCH_TIMEOUT = 900          # seconds, a backstop for the whole worker
PARALLEL_WORKERS = 2


def package_parent():
    import deconv3d
    return os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))


def run_worker(batch, keras_home):
    """Run one batch in a subprocess; returns its summary (or raises with the case)."""
    env = dict(os.environ, KERAS_HOME=keras_home, PYTHONFAULTHANDLER="1",
               DECONV3D_FUZZ_PACKAGE=package_parent())
    command = [sys.executable, os.path.abspath(worker.__file__), "--worker", str(batch)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=BATCH_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        return {"batch": batch, "crash": f"batch timed out after {BATCH_TIMEOUT} s",
                "stderr": (error.stderr or b"")[-3000:] if isinstance(error.stderr, bytes)
                else (error.stderr or "")[-3000:]}
    lines = [line for line in done.stdout.splitlines() if line.startswith("SUMMARY ")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1][len("SUMMARY "):])
    started = [line for line in done.stderr.splitlines() if line.startswith("@")]
    index = int(started[-1][1:]) if started else None
    where = make_case(batch, index).describe() if index is not None else "before the first case"
    stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("@"))
    return {"batch": batch, "crash": f"worker exited with status {done.returncode} during {where}",
            "stderr": stderr[-5000:]}


class BatchRunner:
    """Runs batches in worker subprocesses, PARALLEL_WORKERS at a time, each at most once."""

    def __init__(self, keras_home, selected):
        self._keras_home = keras_home
        self._selected = selected
        self._lock = threading.Lock()
        self._pool = None
        self._futures = {}

    def result(self, batch):
        """The summary of ``batch``, running it (and on first use, every selected batch)."""
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(PARALLEL_WORKERS)
                for b in self._selected:
                    self._submit(b)
            if batch not in self._futures:
                self._submit(batch)
        return self._futures[batch].result()

    def _submit(self, batch):
        self._futures[batch] = self._pool.submit(run_worker, batch, self._keras_home)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def batches(request, tmp_path_factory):
    """The session's BatchRunner; every batch some selected test needs starts on first use."""
    names = {getattr(item, "originalname", None) for item in request.session.items}
    if "test_fuzz_case_count_and_outcomes" in names:
        selected = list(range(BATCHES))
    else:
        selected = sorted(int(item.callspec.params["batch"]) for item in request.session.items
                          if getattr(item, "originalname", None) == "test_fuzz_batch")
    runner = BatchRunner(str(tmp_path_factory.mktemp("fuzz-keras-home")), selected)
    yield runner
    runner.close()


def assert_batch_passed(summary):
    assert "crash" not in summary, f"{summary['crash']}\n{summary['stderr']}"
    assert sum(summary["counts"].values()) == CASES_PER_BATCH
    failures = summary["failures"]
    assert not failures, (f"{summary['failure_count']} failing cases, e.g.:\n"
                          + "\n".join(json.dumps(f) for f in failures[:10]))


@pytest.mark.parametrize("batch", range(BATCHES))
def test_fuzz_batch(batch, batches):
    assert_batch_passed(batches.result(batch))


def test_fuzz_case_count_and_outcomes(batches, capsys):
    """Every batch (run here if no other test ran it): 10,000 cases, with the outcome table."""
    summaries = [batches.result(batch) for batch in range(BATCHES)]
    for summary in summaries:
        assert_batch_passed(summary)
    total, by_outcome, by_family, notes = 0, {}, {}, {}
    for summary in summaries:
        for key, count in summary["counts"].items():
            family, outcome = key.split("|", 1)
            total += count
            by_outcome[outcome] = by_outcome.get(outcome, 0) + count
            by_family.setdefault(family, {})
            by_family[family][outcome] = by_family[family].get(outcome, 0) + count
        for note, count in summary["notes"].items():
            notes[note] = notes.get(note, 0) + count
    assert total == TOTAL_CASES >= 10_000
    assert not any(outcome.startswith("FAIL") for outcome in by_outcome)
    for outcome in ("ok", "ValueError", "TypeError"):
        assert by_outcome.get(outcome, 0) > 500, by_outcome      # every kind is exercised
    with capsys.disabled():
        print(f"\nfuzz: {total} cases in {BATCHES} batches "
              f"({sum(s['seconds'] for s in summaries):.1f} s of worker time)")
        for outcome, count in sorted(by_outcome.items()):
            print(f"  {outcome:40s} {count:6d}")
        for family, outcomes in sorted(by_family.items()):
            print(f"  {family:12s} " + ", ".join(f"{o}={c}" for o, c in sorted(outcomes.items())))
        if notes:
            print(f"  notes on successes: {notes}")


def test_generator_is_deterministic_and_covers_every_family():
    assert make_case(3, 17).describe() == make_case(3, 17).describe()
    families = [family_of(i) for i in range(CASES_PER_BATCH)]
    assert {f: families.count(f) for f in FAMILIES} == FAMILIES
