"""A fixed sample of the fuzzer (tests/fuzz/fuzz.py, docs/fuzz.md) in the default test run:
seeds 0..399 of the ``sample`` profile (meshes capped at 20,000 nodes, small images), each case in
its own process; about 25 s on two cores.

- no crash, no hang: must hold;
- no load error that fails to name its instance/sensor, key and value: must hold;
- non-finite state caused by difftac (the same scene without difftac is stable): known to fail
  today on the seeds in KNOWN_NONFINITE (issue 17 item 1: 53 seeds before its first fixes, 13
  now, most with documented-valid extremes such as contact_width 1e-300 or density 1e9). A seed not in
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

# seeds of the sample that end non-finite because of difftac at the fuzz branch's base commit
# (2e33631): NaN or |x| > 1e10 in qpos/qvel, or MuJoCo's own bad-qacc reset, after a gel warning
KNOWN_NONFINITE = frozenset((
    11, 12, 18, 20, 95, 139, 198, 269, 271, 283, 300, 345, 364))
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
                   reason="issue 17 item 1: 13 sample seeds still end non-finite, most with "
                          "documented-valid extremes (contact_width 1e-300, density 1e9, "
                          "mass_damping 1e300) or garbage in plugin_state on light or heavy fingers")
def test_sample_has_no_nonfinite_caused_by_difftac(sample):
    _, results = sample
    assert not seeds_of(results, "nonfinite-difftac")


def test_sample_odd_numbers_accepted_only_on_known_seeds(sample):
    _, results = sample
    new = seeds_of(results, "bad-accepted") - KNOWN_ODD_ACCEPTED
    assert not new, sorted(new)
