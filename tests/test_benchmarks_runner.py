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


FAKE_LIPBAB = """import numpy as np
from queue import PriorityQueue
import time


def lip_bound(w):
    return float(np.linalg.norm(np.asarray(w), pnorm))


wts=np.load('saved_networks/SDnet_weights.npy',allow_pickle=True)
weights=None

# In[12]:

#main algorithm

start_time = time.time()
pq=PriorityQueue()
pcnt=0
pnorm=2 #norm of choice (1,2,inf)
glb=0.0
pq.put((-99.0, 0, None))
while(True):
    #if (time.time() - start_time)>=300: #(setting execution time limit (in seconds))
        #break
    if(pq.empty()==True):
        break
    print("a line per node")
    pq.get()
    pcnt+=1
    pq.put((-99.0, pcnt, None))
    if FINISH and pcnt == 3:
        glb = lip_bound(weights[1])
        pq.get()
    time.sleep(0.01)
"""


def test_original_lipbab_adapter_runs_its_file_with_our_net_and_its_time_limit(tmp_path, capsys):
    """benchmarks/lipbab.py --lipbab-from: the original's own file is executed (not copied) with our network in
    place of the one it loads, its commented-out time limit enabled at the cap, its norm set, its prints discarded;
    checked on a stand-in with the original's layout. A missing checkout or another layout says "not run"."""
    import importlib
    import sys

    import numpy as np

    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        lipbab = importlib.import_module("lipbab")
    finally:
        sys.path.remove(os.path.join(REPO, "benchmarks"))
    params = [(np.array([[3.0, 0.0], [0.0, 4.0]]), np.zeros(2)), (np.ones((2, 1)), np.zeros(1))]  # kernel layout
    box = (np.zeros(2), np.ones(2))
    for finish in (True, False):
        d = tmp_path / str(finish)
        d.mkdir()
        (d / "LipBaB.py").write_text(FAKE_LIPBAB.replace("FINISH", str(finish)))
        r = lipbab.original_lipbab(str(d), params, box, np.inf, cap=0.3)
        assert r["nodes"] >= 3 and r["seconds"] < 5
        if finish:  # its bound of our first layer's W = kernel.T = diag(3, 4) in the inf-norm
            assert r["status"] == "exact" and r["lower"] == r["upper"] == 4.0
        else:  # only the enabled time limit ends this loop
            assert r["status"] == "budget" and r["seconds"] >= 0.3 and (r["lower"], r["upper"]) == (0.0, 99.0)
    assert "a line per node" not in capsys.readouterr().out
    assert lipbab.original_lipbab(str(tmp_path / "nowhere"), params, box, 2.0, 1.0)["status"].startswith("not run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "LipBaB.py").write_text("print('a different program')\n")
    assert "unknown layout" in lipbab.original_lipbab(str(tmp_path / "other"), params, box, 2.0, 1.0)["status"]
    assert lipbab.original_cell(None, params, box, 2.0, 1.0) == "not run (no --lipbab-from)"


def test_lipbab_command_line_rejects_a_missing_checkout_and_a_bad_cap_before_any_work(tmp_path, capsys):
    """Bad --lipbab-from / --lipbab-cap exit 2 with the argument named, before any search runs."""
    import importlib
    import sys

    import pytest

    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        lipbab = importlib.import_module("lipbab")
    finally:
        sys.path.remove(os.path.join(REPO, "benchmarks"))
    for argv, name in ((["--lipbab-from", str(tmp_path)], "--lipbab-from"), (["--lipbab-cap", "0"], "--lipbab-cap")):
        with pytest.raises(SystemExit) as e:
            lipbab.main(argv)
        assert e.value.code == 2 and name in capsys.readouterr().err
