"""bench/run_all: how it runs benches and what it makes of them (tiny fake benches, no timings asserted).

A bench is a script taking `--json FILE`; run_all must tell ok / missing / crashed / timed out / no result
apart, put each in the table, exit non-zero only for a broken bench, and keep latest.json + history.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run_all = _load()

NESTED = """
import json, sys
out = sys.argv[sys.argv.index("--json") + 1]
json.dump({"bench": "nested", "speed": {"unit": "msgs/s", "nudger": 500.0, "ceiling": 1000.0, "ratio": 0.5},
           "quality": {"unit": "%", "nudger": 97.5}, "people": 10}, open(out, "w"))
print("human output of nested")
"""
FLAT = """
import json, sys
out = sys.argv[sys.argv.index("--json") + 1]
json.dump({"people": 10, "ceiling_msgs_per_s": 2000.0, "nudger_msgs_per_s": 1200.0, "ratio": 0.6,
           "imap_ratio": 0.25, "nudger_imap_replies_per_s": 100.0, "ceiling_imap_replies_per_s": 400.0},
          open(out, "w"))
"""
CRASH = """
import sys
print("set-up done")
print("Traceback: boom in the sink", file=sys.stderr)
sys.exit(3)
"""
NO_JSON = "print('forgot to write the result')\n"
LIST_JSON = """
import json, sys
json.dump([1, 2], open(sys.argv[sys.argv.index("--json") + 1], "w"))
"""
HANG = "import time\ntime.sleep(600)\n"
LEAVES_A_SERVER = """
import json, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # holds our stdout and stderr
json.dump({"bench": "leaves"}, open(sys.argv[sys.argv.index("--json") + 1], "w"))
"""


def bench(tmp_path: Path, name: str, source: str | None, *args: str) -> object:
    script = tmp_path / f"{name}.py"
    if source is not None:
        script.write_text(textwrap.dedent(source), encoding="utf-8")
    return run_all.Bench(name, script, args)


def test_a_bench_that_writes_nested_figures_gives_one_row_per_figure(tmp_path: Path) -> None:
    result = run_all.run_bench(bench(tmp_path, "nested", NESTED), cwd=tmp_path)
    assert result.status == "ok"
    assert not result.failed
    assert result.figures["people"] == 10
    rows = run_all.rows_for(result)
    assert [(r.figure, r.nudger, r.ceiling, r.ratio) for r in rows] == [
        ("speed (msgs/s)", 500.0, 1000.0, 0.5),
        ("quality (%)", 97.5, None, None),
    ]


def test_flat_ratio_keys_are_paired_with_the_nudger_and_ceiling_keys_sharing_their_words(
    tmp_path: Path,
) -> None:
    result = run_all.run_bench(bench(tmp_path, "flat", FLAT), cwd=tmp_path)
    assert result.status == "ok"
    assert result.figures["bench"] == "flat"  # filled in when the bench leaves it out
    rows = {r.figure: (r.nudger, r.ceiling, r.ratio) for r in run_all.rows_for(result)}
    assert rows == {"msgs_per_s": (1200.0, 2000.0, 0.6), "imap_replies_per_s": (100.0, 400.0, 0.25)}


def test_nested_figures_with_their_own_key_names_pair_like_flat_ones() -> None:
    figures = {
        "bench": "ingest",
        "replies": 10,
        "listener": {
            "ceiling_per_s": 600.0,
            "nudger_per_s": 300.0,
            "ratio": 0.5,
            "ceiling_seconds": 0.1,
            "processed_per_s": 60.0,
            "processed_ratio": 0.1,
            "peak_rss_mb": 100.0,
        },
    }
    rows = run_all.rows_for(run_all.BenchResult("ingest", "ok", figures=figures))
    assert [(r.figure, r.nudger, r.ceiling, r.ratio) for r in rows] == [
        ("listener per_s", 300.0, 600.0, 0.5),
        ("listener processed_per_s", 60.0, 600.0, 0.1),
    ]


def test_a_missing_bench_file_is_reported_and_is_not_a_failure(tmp_path: Path) -> None:
    result = run_all.run_bench(bench(tmp_path, "ingest", None, "--replies", "10"), cwd=tmp_path)
    assert result.status == "missing"
    assert not result.failed
    assert "ingest.py does not exist" in result.error
    assert [r.figure for r in run_all.rows_for(result)] == ["MISSING (no bench file yet)"]


def test_a_crashing_bench_fails_with_its_exit_code_and_stderr(tmp_path: Path) -> None:
    result = run_all.run_bench(bench(tmp_path, "crash", CRASH), cwd=tmp_path)
    assert result.status == "crashed"
    assert result.failed
    assert result.exit_code == 3
    assert "boom in the sink" in result.error
    assert [r.figure for r in run_all.rows_for(result)] == ["CRASHED (exit 3)"]


@pytest.mark.parametrize(("source", "why"), [(NO_JSON, "no JSON result"), (LIST_JSON, "holds a list")])
def test_a_bench_that_exits_0_without_one_json_object_fails(tmp_path: Path, source: str, why: str) -> None:
    result = run_all.run_bench(bench(tmp_path, "quiet", source), cwd=tmp_path)
    assert result.status == "no result"
    assert result.failed
    assert why in result.error


def test_a_bench_past_its_timeout_is_killed_and_fails(tmp_path: Path) -> None:
    result = run_all.run_bench(bench(tmp_path, "hang", HANG), cwd=tmp_path, timeout=1)
    assert result.status == "timeout"
    assert result.failed
    assert "killed after 1 s" in result.error


def test_what_a_bench_leaves_running_is_killed_and_does_not_hold_run_all_up(tmp_path: Path) -> None:
    result = run_all.run_bench(bench(tmp_path, "leaves", LEAVES_A_SERVER), cwd=tmp_path, timeout=300)
    assert result.status == "ok"
    assert "still running at its end: killed" in result.figures["run_all_note"]


def test_run_all_writes_the_summary_prints_the_table_and_exits_1_for_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    benches = [
        bench(tmp_path, "send", None, "--people", "10"),
        bench(tmp_path, "crash", CRASH),
        bench(tmp_path, "nested", NESTED),
    ]
    out_dir = tmp_path / "results"
    status, results = run_all.run_all(benches, size=10, out_dir=out_dir)
    assert status == 1
    assert [r.status for r in results] == ["missing", "crashed", "ok"]

    printed = capsys.readouterr()
    assert "| Traceback: boom in the sink" in printed.out  # the crashing bench's stderr is shown
    table = printed.out[printed.out.index("bench ") :]
    lines = {line.split()[0] + " " + line.split()[1]: line for line in table.splitlines()[2:] if line.strip()}
    assert "MISSING" in lines["send MISSING"]
    assert "CRASHED (exit 3)" in lines["crash CRASHED"]
    assert lines["nested speed"].split()[-3:] == ["500", "1,000", "0.500"]
    assert "FAILED: crash" in printed.err

    latest = json.loads((out_dir / "latest.json").read_text(encoding="utf-8"))
    assert latest["ok"] is False
    assert latest["size"] == 10
    assert latest["machine"]["cpu_count"]
    assert latest["machine"]["python"]
    assert set(latest["benches"]) == {"send", "crash", "nested"}
    assert latest["benches"]["crash"]["exit_code"] == 3
    assert latest["benches"]["nested"]["figures"]["speed"]["ratio"] == 0.5
    assert {row["figure"] for row in latest["table"]} >= {"MISSING (no bench file yet)", "CRASHED (exit 3)"}

    run_all.run_all(benches[2:], size=10, out_dir=out_dir)
    history = (out_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["ok"] for line in history] == [False, True]


def test_missing_benches_alone_do_not_fail_the_run(tmp_path: Path) -> None:
    benches = [bench(tmp_path, "send", None), bench(tmp_path, "nested", NESTED)]
    status, _ = run_all.run_all(benches, size=None, out_dir=tmp_path / "results")
    assert status == 0
    latest = json.loads((tmp_path / "results" / "latest.json").read_text(encoding="utf-8"))
    assert latest["ok"] is True
    assert latest["size"] == "full"


def test_plan_uses_the_projects_own_cases_and_adds_fixture_folders_only_when_given(tmp_path: Path) -> None:
    by_name = {b.name: b for b in run_all.plan(2000)}
    assert list(by_name) == ["send", "ingest", "trim", "grouping", "classify", "report"]
    assert by_name["send"].args == ("--people", "2000")
    assert by_name["ingest"].args == ("--replies", "2000")
    assert by_name["report"].args == ("--people", "2000", "--small", "200")
    assert by_name["trim"].args
    assert all(a.startswith("tests/trim_cases/") for a in by_name["trim"].args)
    assert by_name["classify"].args == ("tests/emails",)
    assert run_all.plan(None)[0].args == ("--people", "100000")

    (tmp_path / "replies" / "talon").mkdir(parents=True)
    (tmp_path / "inbound").mkdir()
    with_fixtures = {b.name: b for b in run_all.plan(2000, tmp_path)}
    assert str(tmp_path / "replies" / "talon") in with_fixtures["trim"].args
    assert with_fixtures["classify"].args == ("tests/emails", str(tmp_path / "inbound"))


@pytest.mark.parametrize("name", ["trim", "grouping", "classify"])
def test_the_projects_own_benches_keep_the_contract(name: str, tmp_path: Path) -> None:
    """The real scripts, at their smallest: one JSON object with a speed figure against a ceiling."""
    small = {"grouping": ("--people", "200")}
    planned = {b.name: b for b in run_all.plan(200)}[name]
    result = run_all.run_bench(run_all.Bench(name, planned.script, small.get(name, planned.args)))
    assert result.status == "ok", result.error
    assert result.figures["bench"] == name
    speed = result.figures["speed"]
    assert speed["nudger"] > 0
    assert speed["ceiling"] > 0
    assert speed["ratio"] > 0
