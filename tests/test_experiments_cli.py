"""Experiment command lines: bad arguments exit 2 with one line naming the flag, before any work, and earlier
results stay untouched; every option's default is in --help; a failed or empty run never replaces results."""

from __future__ import annotations

import glob
import os

import pytest
from test_end_to_end import _load_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(REPO, "experiments", "*.py"))
    if not p.endswith("expkit.py")
)

BAD = [  # (experiment, arguments, what the one-line message must contain); each was accepted or crashed before
    ("train_digits", ["--epochs", "0"], "--epochs: must be >= 1"),
    ("train_digits", ["--lr", "-1"], "--lr: must be > 0"),
    ("train_digits", ["--lr", "nan"], "--lr: must be finite"),
    ("train_digits", ["--batch-size", "x"], "--batch-size: expected an integer"),
    ("lipbab_table1", ["--nets", "foo"], "--nets: expected a comma list of"),
    ("lipbab_table1", ["--golden-dir", "no_such_dir"], "--golden-dir: 'no_such_dir' has no"),
    ("reward_gating", ["--seeds", "0"], "--seeds: must be >= 1"),
    ("ece_estimators", ["--sizes", "-5"], "--sizes: must be >= 1"),
    ("prune_digits", ["--ratio", "1.5"], "--ratio: must lie in [0, 1]"),
    ("prune_digits", ["--ratio", "1"], "--ratio: must lie in [0, 1)"),
    ("fair_moea", ["--popsize", "0"], "--popsize: must be >= 1"),
    ("hyperspectral_wgan_gp", ["--iterations", "-3"], "--iterations: must be >= 1"),
    ("blend_prune_digits", ["--mutation-rate", "2"], "--mutation-rate: must lie in [0, 1]"),
    ("gator_digits", ["--seeds", "-1"], "--seeds: must be >= 0"),
]


@pytest.mark.parametrize("name, argv, says", BAD, ids=[f"{n} {' '.join(a)}" for n, a, _ in BAD])
def test_bad_arguments_exit_2_in_one_line_and_leave_results(tmp_path, capsys, name, argv, says):
    (tmp_path / "results.json").write_text("earlier result")
    exp = _load_experiment(name)
    with pytest.raises(SystemExit) as e:
        exp.main(argv + ["--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and any(says in line for line in err), err
    assert len([ln for ln in err if "error" in ln]) == 1 and not any("Traceback" in ln for ln in err)
    assert (tmp_path / "results.json").read_text() == "earlier result"
    assert os.listdir(tmp_path) == ["results.json"]  # nothing else written, no staging folder left


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_help_shows_every_default(name, capsys):
    exp = _load_experiment(name)
    with pytest.raises(SystemExit) as e:
        exp.parse_args(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    options = [ln for ln in text.split("options:")[1].splitlines() if ln.strip().startswith("--")]
    assert options
    parser_actions = [a for a in _parser(exp)._actions if a.option_strings and a.dest != "help"]
    assert text.count("(default:") >= len(parser_actions), (name, len(parser_actions))


def _parser(exp):
    import argparse

    made = []
    real = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        made.append(self)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = grab
    try:
        with pytest.raises(SystemExit):
            exp.parse_args([])
    finally:
        argparse.ArgumentParser.parse_args = real
    return made[0]


def test_a_failed_run_never_replaces_earlier_results(tmp_path, monkeypatch):
    import expkit

    _load_experiment("train_digits")
    (tmp_path / "results.json").write_text("earlier result")

    @expkit.experiment
    def crashes(argv=None):
        out = expkit.output_dir(str(tmp_path))
        (open(os.path.join(out, "results.json"), "w")).write("half")
        raise RuntimeError("boom")

    @expkit.experiment
    def empty(argv=None):
        out = expkit.output_dir(str(tmp_path))
        (open(os.path.join(out, "results.json"), "w")).write("[]")
        return []

    @expkit.experiment
    def interrupted(argv=None):
        expkit.output_dir(str(tmp_path))
        raise KeyboardInterrupt

    @expkit.experiment
    def works(argv=None):
        out = expkit.output_dir(str(tmp_path))
        (open(os.path.join(out, "results.json"), "w")).write("new")
        return {"ok": 1}

    with pytest.raises(RuntimeError):
        crashes()
    for fn, code in ((empty, 1), (interrupted, 130)):
        with pytest.raises(SystemExit) as e:
            fn()
        assert e.value.code == code
    assert (tmp_path / "results.json").read_text() == "earlier result"
    assert not glob.glob(str(tmp_path) + ".partial-*")
    assert works() == {"ok": 1} and (tmp_path / "results.json").read_text() == "new"
    assert not glob.glob(str(tmp_path) + ".partial-*")
