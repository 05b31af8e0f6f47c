"""benchmarks/run_all.py: one command runs every benchmark and keeps its ratio lines with the machine."""

from __future__ import annotations

import importlib.util
import os

from conftest import REPO


def _runner():
    spec = importlib.util.spec_from_file_location("bench_run_all", os.path.join(REPO, "benchmarks", "run_all.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_all_collects_ratio_lines_machine_and_failures(tmp_path, capsys):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "fast.py").write_text(
        'import sys\nprint("noise")\nprint("thing vs peer: 2.50x (baseline 1.000 s, jaxkit 0.400 s)")\n'
        'print("other vs peer: not run (peer missing)")\nprint("--full" in sys.argv)\n'
    )
    (bench / "broken.py").write_text("raise SystemExit(3)\n")
    (bench / "benchkit.py").write_text("raise SystemExit('benchkit is a helper, never run')\n")
    run_all = _runner()
    assert run_all.main(["--dir", str(bench), "--out", str(tmp_path / "res")]) == 1  # a failure is reported
    (out,) = list((tmp_path / "res").iterdir())
    text = out.read_text()
    assert out.name.endswith(("-cpu.txt", "-gpu.txt", "-cuda.txt", "-tpu.txt"))
    for want in (
        "# cores: ",
        "# backend: ",
        "# jax: ",
        "# cpu: ",
        "## fast.py: ok",
        "thing vs peer: 2.50x (baseline 1.000 s, jaxkit 0.400 s)",
        "other vs peer: not run",
        "## broken.py: FAILED (exit 3)",
        "failed: broken.py",
    ):
        assert want in text, want
    assert "noise" not in text and "benchkit" not in text
    assert "True" not in capsys.readouterr().out  # without --full the scripts get no --full
    assert run_all.main(["--dir", str(bench), "--out", str(tmp_path / "res"), "--only", "fast", "--full"]) == 0
    assert "fast.py" in (tmp_path / "res" / out.name.replace(".txt", "-full.txt")).read_text()


def _benchkit():
    spec = importlib.util.spec_from_file_location("bench_benchkit", os.path.join(REPO, "benchmarks", "benchkit.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_full_replaces_defaults_but_not_what_the_command_line_set(capsys):
    import argparse

    import pytest

    parse = _benchkit().parse

    def ap():
        a = argparse.ArgumentParser()
        a.add_argument("--n", type=int, default=10)
        a.add_argument("--repeat", type=int, default=3)
        return a

    assert vars(parse(ap(), [], {"n": 1000})) == {"n": 10, "repeat": 3, "full": False}
    assert vars(parse(ap(), ["--full"], {"n": 1000})) == {"n": 1000, "repeat": 3, "full": True}
    assert parse(ap(), ["--full", "--n", "7"], {"n": 1000}).n == 7  # explicit beats --full
    with pytest.raises(SystemExit):
        parse(ap(), ["--help"], {"n": 1000})
    assert "accelerator: --n 1000" in capsys.readouterr().out  # the help says what --full changes
    with pytest.raises(ValueError, match="no argument named"):
        parse(ap(), [], {"size": 1})


def test_every_benchmark_script_defines_full_sizes():
    """run_all.py --full passes --full to the scripts that accept it: every benchmark does (the accelerator sizes)."""
    folder = os.path.join(REPO, "benchmarks")
    names = [f for f in sorted(os.listdir(folder)) if f.endswith(".py") and f not in ("benchkit.py", "run_all.py")]
    assert len(names) >= 13
    runner = _runner()
    lacking = [n for n in names if not runner.accepts_full(os.path.join(folder, n))]
    assert lacking == []
    for n in names:
        with open(os.path.join(folder, n)) as fh:
            src = fh.read()
        assert "parse(" in src and "FULL = {" in src, n
