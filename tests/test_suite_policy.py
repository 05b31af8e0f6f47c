"""The suite's own rules: unexpected skips fail, nothing reads outside the repository."""

import os
import subprocess
import sys

from conftest import REPO

INNER = """
import pytest

def test_skipped_inside():
    pytest.skip("golden data not found")

@pytest.mark.skipif(True, reason="not on this machine")
def test_skipif():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False

def test_passes():
    pass
"""


def test_unexpected_skips_fail_the_run(pytester):
    pytester.syspathinsert(os.path.join(REPO, "tests"))
    pytester.makepyfile(test_inner=INNER, test_collect='import pytest\npytest.importorskip("no_such_module_xyz")\n')
    res = pytester.runpytest_inprocess("-p", "skip_policy", "-p", "no:cacheprovider", "--continue-on-collection-errors")
    # a skip in the call fails; a skipif (decided in setup) and a module-level importorskip become errors
    res.assert_outcomes(passed=1, failed=1, xfailed=1, errors=2)
    assert res.ret != 0
    res.stdout.fnmatch_lines(["*unexpected skip: *not on this machine*", "*unexpected skip: *golden data not found*"])


OUTSIDE = (".." + "/shared", "SHARED" + "_DIR")  # spelled apart so that this file does not match itself


def test_nothing_in_the_repository_reads_outside_it():
    """A user's clone has nothing beside it: no path may lead to a sibling folder of the checkout."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    bad = []
    for f in files:
        if (
            f.endswith((".py", ".ipynb", ".md", ".cfg", ".toml", ".txt", ".yaml", ".yml"))
            or f in ("Makefile",)
            or f.startswith(".ci/")
        ):
            with open(os.path.join(REPO, f), encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            if any(p in text for p in OUTSIDE):
                bad.append(f)
    assert not bad, f"these files refer to a folder outside the repository: {bad}"


def test_xdist_groups_keep_their_tests_on_one_worker(tmp_path):
    """The Makefile runs `--dist loadgroup` so tests that share a module fixture or a compiled program
    (`xdist_group`) run on one worker; with pytest 9 and pytest-xdist 3.8 the groups were silently ignored."""
    (tmp_path / "test_grouped.py").write_text(
        "import pytest\n\npytestmark = pytest.mark.xdist_group('g')\n\n"
        "@pytest.mark.parametrize('i', range(6))\ndef test_a(i):\n    pass\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-v",
            "-p",
            "no:cacheprovider",
            "test_grouped.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
    )
    lines = [ln for ln in out.stdout.splitlines() if "PASSED" in ln]
    assert len(lines) == 6, out.stdout + out.stderr
    assert all("@g" in ln for ln in lines), out.stdout
    assert len({ln.split()[0] for ln in lines}) == 1, out.stdout  # one worker ran them all


def test_every_experiment_ends_with_a_verdict_and_writes_under_results():
    """Each script prints the "paper vs here" block (expkit.verdict; the end-to-end tests check its rows) and its
    default --out is results/<script name>, where the README says results go."""
    import glob
    import re

    scripts = sorted(glob.glob(os.path.join(REPO, "experiments", "*.py")))
    scripts = [s for s in scripts if os.path.basename(s) != "expkit.py"]
    assert len(scripts) >= 21
    for path in scripts:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        name = os.path.basename(path)[:-3]
        assert "expkit.verdict(" in text, f"{name}: no verdict block"
        assert re.search(rf'"--out", default="results/{name}"', text), f"{name}: default --out is not results/{name}"
