"""A fixed sample of the fuzzer (tests/fuzz/fuzz.py, docs/fuzz.md) in the default test run:
seeds 0..399 of the ``sample`` profile (meshes capped at 20,000 nodes, small images), each case in
its own process; about 25 s on two cores.

- no crash, no hang: must hold;
- no load error that fails to name its instance/sensor, key and value: must hold;
- non-finite state caused by difftac (the same scene without difftac is stable): known to fail
  today on the seeds in KNOWN_NONFINITE (issue 17 item 1: 53 seeds before its first fixes, 13
  after them, 1 now: explicit coupling on a far too light free finger). A seed not in
  that list failing is a new regression and fails the test; when all are fixed,
  ``test_sample_has_no_nonfinite_caused_by_difftac`` passes, its strict xfail turns red, and the
  marker and the list are to be removed;
- odd number text accepted (hexadecimal, blank-padded): known on KNOWN_ODD_ACCEPTED (issue 17:
  parsers must take decimal numbers only).

The fuzzer's run folder (out/fuzz/sample/) keeps every failing case: `python tests/fuzz/fuzz.py
--replay out/fuzz/sample/seed_N/case.json` reproduces one in-process.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEEDS = (0, 400)

# seeds of the sample that end non-finite because of difftac (53 at the fuzz branch's base commit
# 2e33631, 13 after the first fixes): NaN or |x| > 1e10 in qpos/qvel, or MuJoCo's own bad-qacc
# reset, after a gel warning. Left: 271, coupling="explicit" on a 0.5 g free finger whose site is
# 0.5 m from its centre, starting in overlap: MuJoCo integrates the gel's force explicitly, stable
# only while dt sqrt(k/m) < 2 (docs/mjcf.md, coupling), which this body is far past
KNOWN_NONFINITE = frozenset((271,))
# odd number text the parsers accept: none since they take decimal numbers only (plugin/config.c)
KNOWN_ODD_ACCEPTED = frozenset()


@pytest.fixture(scope="module")
def sample():
    out = ROOT / "out" / "fuzz" / "sample"
    if out.exists():
        for p in sorted(out.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    env = dict(os.environ)
    env.setdefault("DTAC_BUILD_DIR", "build")
    # its own interpreter: the runner forks one child per case, which is safest from a process
    # with no threads (pytest may hold thread pools of earlier tests)
    r = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fuzz" / "fuzz.py"), "--seeds", "%d:%d" % SEEDS,
         "--profile", "sample", "--jobs", "2", "--timeout", "60", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    results = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    print(r.stdout[-2000:])
    return summary, results


def seeds_of(results, cls):
    return {r["seed"] for r in results if r["class"] == cls}


def test_sample_ran_every_seed(sample):
    summary, results = sample
    assert summary["cases"] == SEEDS[1] - SEEDS[0]


def test_sample_has_no_crash_and_no_hang(sample):
    _, results = sample
    bad = [(r["seed"], r["class"], r.get("where"), r.get("log_tail", "")[-400:]) for r in results
           if r["class"] in ("crash", "hang")]
    assert not bad


def test_sample_load_errors_name_owner_key_and_value(sample):
    _, results = sample
    bad = [(r["seed"], r["error"]) for r in results if r["class"] == "load-error-unnamed"]
    assert not bad


def test_sample_nonfinite_only_on_known_seeds(sample):
    _, results = sample
    new = seeds_of(results, "nonfinite-difftac") - KNOWN_NONFINITE
    assert not new, "new non-finite-caused-by-difftac seeds (reproduce with fuzz.py --replay " \
        "out/fuzz/sample/seed_N/case.json): %s" % sorted(new)


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="issue 17 item 1: seed 271 still ends non-finite (explicit coupling "
                          "on a free finger far too light for MuJoCo's explicit step)")
def test_sample_has_no_nonfinite_caused_by_difftac(sample):
    _, results = sample
    assert not seeds_of(results, "nonfinite-difftac")


def test_sample_odd_numbers_accepted_only_on_known_seeds(sample):
    _, results = sample
    new = seeds_of(results, "bad-accepted") - KNOWN_ODD_ACCEPTED
    assert not new, sorted(new)
