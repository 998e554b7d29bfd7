"""The benchmark's baseline comparison, on synthetic runs (no timing, no torch)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import numbapool.benchmark as benchmark
from numbapool.benchmark import (
    CASES,
    LAYOUTS,
    Regression,
    _by_id,
    compare,
    main,
    merge_runs,
    settle,
    unmatched,
)

ROOT = Path(__file__).resolve().parent.parent


def run_of(**cases):
    """A saved run holding cases given as id=(ratio, roofline)."""
    return {"cases": [{"id": i, "ratio": ratio, "roofline": roofline} for i, (ratio, roofline) in cases.items()]}


def test_slower_ratio_is_a_regression():
    baseline = run_of(a=(2.0, 0.5), b=(1.0, 0.5))
    current = run_of(a=(1.0, 0.5), b=(1.0, 0.5))
    assert compare(baseline, current, 1.15) == [Regression("a", "ratio", 2.0, 1.0)]
    assert compare(baseline, current, 1.15)[0].slowdown == 2.0


def test_ratio_is_preferred_to_roofline():
    # A machine with half the bandwidth halves the roofline fraction but not the ratio.
    baseline = run_of(a=(1.5, 0.8))
    current = run_of(a=(1.5, 0.4))
    assert compare(baseline, current, 1.15) == []


@pytest.mark.parametrize("base_ratio, cur_ratio", [(None, None), (1.5, None), (None, 1.5)])
def test_roofline_is_used_without_torch_on_both_sides(base_ratio, cur_ratio):
    baseline = run_of(a=(base_ratio, 0.6))
    current = run_of(a=(cur_ratio, 0.3))
    assert compare(baseline, current, 1.15) == [Regression("a", "roofline", 0.6, 0.3)]


def test_within_threshold_and_faster_pass():
    baseline = run_of(a=(1.0, 0.5), b=(1.0, 0.5))
    current = run_of(a=(1.0 / 1.1, 0.5), b=(3.0, 0.9))
    assert compare(baseline, current, 1.15) == []
    assert [r.case for r in compare(baseline, current, 1.05)] == ["a"]


def test_missing_cases_are_reported_not_failed():
    baseline = run_of(a=(1.0, 0.5), gone=(9.0, 0.9))
    current = run_of(a=(1.0, 0.5), new=(0.1, 0.1))
    assert compare(baseline, current, 1.15) == []
    assert unmatched(baseline, current) == (["gone"], ["new"])


def write(tmp_path, name, run):
    path = tmp_path / name
    path.write_text(json.dumps(run))
    return str(path)


def test_cli_exit_status(tmp_path, capsys):
    base = write(tmp_path, "base.json", run_of(a=(2.0, 0.5), b=(1.0, 0.5), gone=(1.0, 0.5)))
    ok = write(tmp_path, "ok.json", run_of(a=(1.9, 0.5), b=(1.0, 0.5)))
    slow = write(tmp_path, "slow.json", run_of(a=(1.0, 0.5), b=(1.0, 0.5)))

    assert main(["--compare", base, "--current", ok]) == 0
    assert "gone" in capsys.readouterr().out

    assert main(["--compare", base, "--current", slow, "--max-slowdown", "1.15"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION a" in out and "2.00x slower" in out and "REGRESSION b" not in out


def test_python_m_numbapool_bench_compare(tmp_path):
    base = write(tmp_path, "base.json", run_of(a=(2.0, 0.5)))
    slow = write(tmp_path, "slow.json", run_of(a=(1.0, 0.5)))
    cmd = [sys.executable, "-m", "numbapool", "bench", "--compare", base, "--current", slow]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "REGRESSION a" in proc.stdout


def test_case_table_ids_are_unique_and_cover_both_layouts():
    ids = [case.id for case in CASES]
    assert len(set(ids)) == len(ids)
    assert {case.layout for case in CASES} == set(LAYOUTS)


def test_bench_writes_no_file_unless_asked(tmp_path):
    """A run from a user's project folder leaves nothing there; --out writes where told."""
    cmd = [sys.executable, "-m", "numbapool", "bench", "--quick", "--cases",
           "tiny_max2-1x64x7x7-cf"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "run.json"
    proc = subprocess.run([*cmd, "--out", str(out)], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in json.loads(out.read_text())["cases"]] == ["tiny_max2-1x64x7x7-cf"]


# ---------------------------------------------------------------------------------------
# Re-measuring before failing (synthetic records), then real runs kept short


def remeasured(*ratios):
    """A ``remeasure`` that returns records of ``ratios`` in turn, and the ones it gave."""
    given = []

    def remeasure(case_id):
        given.append({"id": case_id, "ratio": ratios[len(given)], "roofline": 0.5,
                      "busy_elsewhere": 0.0})
        return given[-1]

    return remeasure, given


def test_a_case_that_is_fast_again_when_remeasured_passes():
    baseline = run_of(a=(2.0, 0.5), b=(2.0, 0.5))
    current = run_of(a=(1.0, 0.5), b=(2.0, 0.5))
    remeasure, given = remeasured(1.95, 1.9)
    regressions, inconclusive = settle(baseline, current, 1.15, remeasure)
    assert regressions == inconclusive == []
    assert _by_id(current)["a"]["measurements"] == [1.0, 1.95, 1.9]


def test_a_case_slower_in_every_measurement_fails_with_the_better_one():
    baseline = run_of(a=(2.0, 0.5))
    current = run_of(a=(1.0, 0.5))
    remeasure, given = remeasured(1.2, 1.1)
    regressions, inconclusive = settle(baseline, current, 1.15, remeasure)
    # two of three agree, so the third is not needed
    assert regressions == [Regression("a", "ratio", 2.0, 1.2)] and inconclusive == []
    assert len(given) == 1


def test_one_lucky_measurement_does_not_pass_a_slowdown():
    # CI once measured a planted 1.3x slowdown as 1.99 -> 1.62, 1.63, 1.73: the best of
    # the three passed at 1.15x (1.73 was 1.7305). The median does not.
    baseline = run_of(a=(1.99, 0.5))
    current = run_of(a=(1.62, 0.5))
    remeasure, given = remeasured(1.74, 1.63)
    regressions, inconclusive = settle(baseline, current, 1.15, remeasure)
    assert regressions == [Regression("a", "ratio", 1.99, 1.63)] and inconclusive == []
    assert _by_id(current)["a"]["measurements"] == [1.62, 1.74, 1.63]


def test_a_slowdown_measured_on_a_busy_machine_is_inconclusive(capsys):
    baseline = run_of(a=(2.0, 0.5))
    current = {"cases": [{"id": "a", "ratio": 0.9, "roofline": 0.5, "busy_elsewhere": 0.6}]}
    busy = {"id": "a", "ratio": 1.0, "roofline": 0.5, "busy_elsewhere": 0.5}
    regressions, inconclusive = settle(baseline, current, 1.15, lambda case: dict(busy))
    assert regressions == [] and [r.case for r in inconclusive] == ["a"]


def test_runs_of_several_processes_keep_each_cases_median():
    runs = [
        {"cases": [{"id": "a", "ratio": 2.0}, {"id": "b", "ratio": 1.0}],
         "overhead": [{"id": "t", "numbapool_us": 9.0, "torch_us": 3.0}], "failed": {}},
        {"cases": [{"id": "a", "ratio": 1.5}, {"id": "b", "ratio": 3.0}],
         "overhead": [{"id": "t", "numbapool_us": 3.0, "torch_us": 3.0}], "failed": {"c": "E"}},
        {"cases": [{"id": "a", "ratio": 1.8}, {"id": "b", "ratio": 2.0}],
         "overhead": [{"id": "t", "numbapool_us": 6.0, "torch_us": 3.0}], "failed": {}},
    ]
    merged = merge_runs(runs)
    assert [(r["id"], r["ratio"], r["per_process"]) for r in merged["cases"]] == [
        ("a", 1.8, [2.0, 1.5, 1.8]), ("b", 2.0, [1.0, 3.0, 2.0])]
    assert merged["overhead"][0]["numbapool_us"] == 6.0   # the median speed, not time
    assert merged["processes"] == 3 and merged["failed"] == {"c": "E"}
    assert merged["ratio_geomean"] == pytest.approx((1.8 * 2.0) ** 0.5)


def test_a_fresh_process_returns_its_result_and_its_errors(monkeypatch):
    monkeypatch.setattr(benchmark, "_threading_layer", lambda: None)   # allow the fork
    if hasattr(os, "fork"):
        assert benchmark._in_fresh_process(os.getpid) != os.getpid()
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        benchmark._in_fresh_process(lambda: 1 / 0)


def test_a_process_with_running_threads_is_not_forked(monkeypatch):
    monkeypatch.setattr(benchmark, "_threading_layer", lambda: "omp")
    assert benchmark._in_fresh_process(os.getpid) == os.getpid()


@pytest.mark.parametrize("option", [["--processes", "0"], ["--budget", "-1"]])
def test_bad_timing_options_are_refused(option, capsys):
    with pytest.raises(SystemExit):
        main([*option, "--cases", "tiny"])
    assert option[1] in capsys.readouterr().err


CASE = "adaptive_avg7-64x512x13x13-cf"
# numbapool made exactly 1.3 times slower: each call busy-waits 30% of its own time
PLANTED = """
import sys, time
import numbapool.benchmark as bench
build = bench.build
def slowed(case, **kwargs):
    made = build(case, **kwargs)
    def slower():
        start = time.perf_counter()
        result = made.numbapool()
        end = time.perf_counter() + 0.3 * (time.perf_counter() - start)
        while time.perf_counter() < end:
            pass
        return result
    return bench.Bench(slower, made.torch, made.reads)
bench.build = slowed
sys.exit(bench.main(sys.argv[1:]))
"""


def bench(*args, planted=False):
    # Not --quick, and three processes: one process's ratio can sit a tenth off another's
    # for the whole process, most of the gap between the planted 1.3x and the 1.15x limit.
    code = ["-c", PLANTED] if planted else ["-m", "numbapool", "bench"]
    return subprocess.run([sys.executable, *code, "--cases", CASE, "--processes", "3",
                           *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.fixture
def baseline(tmp_path):
    pytest.importorskip("torch")   # the ratio to PyTorch is what cancels the machine's speed
    path = tmp_path / "baseline.json"
    assert bench("--out", path).returncode == 0
    return path


def test_same_code_with_a_cpu_hog_started_in_between_passes(baseline):
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        result = bench("--compare", baseline)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()   # gone before the next test times anything
    assert result.returncode == 0, result.stdout + result.stderr
    assert "noise seen:" in result.stdout


def test_planted_slowdown_of_1_3_fails(baseline):
    result = bench("--compare", baseline, "--max-slowdown", "1.15", planted=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"REGRESSION {CASE}" in result.stdout
