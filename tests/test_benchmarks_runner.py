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
