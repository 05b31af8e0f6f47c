"""End-to-end runs of the demo and the notebooks (marked slow; CI runs them too)."""

import glob
import importlib.util
import os
import sys

import pytest

from conftest import REPO, golden_file


def _load_experiment(name):
    path = os.path.join(REPO, "experiments", f"{name}.py")
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(f"exp_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_train_digits_demo_reaches_95_percent(tmp_path, capsys):
    exp = _load_experiment("train_digits")
    out = exp.main(["--seeds", "0", "--out", str(tmp_path), "--no-progress"])
    assert min(out["final_test_accuracy"]) >= 0.95
    text = capsys.readouterr().out
    assert '"seeds": [\n    0\n  ]' in text and "final test accuracy" in text
    assert os.path.exists(tmp_path / "learning_curves.png") and os.path.exists(tmp_path / "history.json")


@pytest.mark.slow
def test_lipbab_table1_reproduces_the_golden_constants(tmp_path):
    gdir = os.path.dirname(golden_file("lipbab", "iris_4-5-5-3.npz"))
    exp = _load_experiment("lipbab_table1")
    rows = exp.main(["--sources", "golden", "--golden-dir", gdir, "--nets", "iris_4-5-5-3,sd_10-30-30-30-3", "--out", str(tmp_path),
                     "--no-progress"])
    assert len(rows) == 6
    for r in rows:
        assert r["is_exact"] and abs(r["exact"] - r["golden"]) <= 1e-9 * r["golden"]
        assert r["first"] >= r["k2"] >= r["exact"] and r["k1.5"] <= 1.5 * r["lower"] + 1e-9
    assert os.path.exists(tmp_path / "convergence.png")


@pytest.mark.slow
def test_prune_digits_table(tmp_path, capsys):
    exp = _load_experiment("prune_digits")
    out = exp.main(["--seeds", "0", "--epochs", "8", "--finetune-epochs", "2", "--out", str(tmp_path)])
    assert out["unpruned"][0] >= 0.95
    tuned = {c: r["finetuned"][0] for c, r in out["rows"].items()}
    assert min(tuned.values()) >= 0.7, tuned  # 50 % of filters gone; 2 epochs of fine-tuning recover most ...
    assert sorted(tuned.values())[len(tuned) // 2] >= 0.9, tuned  # ... and the typical criterion nearly all
    assert out["params"][1] < 0.35 * out["params"][0] and out["macs"][1] < 0.35 * out["macs"][0]
    assert abs(out["spearman"][2, 3]) > 0.9  # FPGM and Fermat rank alike (the blending paper's observation)
    text = capsys.readouterr().out
    assert "fine-tuned acc %" in text and "taylor_bn_beta" in text and '"seeds": [' in text
    assert os.path.exists(tmp_path / "spearman.png") and os.path.exists(tmp_path / "table.json")


@pytest.mark.slow
def test_bfrifp_digits(tmp_path, capsys):
    exp = _load_experiment("bfrifp_digits")
    out = exp.main(["--seeds", "0", "--pretrain-epochs", "8", "--epochs", "7", "--out", str(tmp_path)])
    assert out["unpruned"][0] >= 0.95
    for method, r in out["results"].items():
        assert r["before"][0] < 0.5  # half the filters cut without training: near chance
        assert r["after"][0] >= 0.9, (method, r)  # reorganised and removed: recovered
    assert out["params"][1] < 0.3 * out["params"][0]
    text = capsys.readouterr().out
    assert "bfrifp+rfpn" in text and "drop vs unpruned %" in text
    assert os.path.exists(tmp_path / "decay.png") and os.path.exists(tmp_path / "results.json")


@pytest.mark.slow
def test_pruned_yolo_digits(tmp_path, capsys):
    exp = _load_experiment("pruned_yolo_digits")
    out = exp.main(["--seeds", "0", "--pretrain-epochs", "8", "--iterations", "2", "--sparsity-epochs", "2",
                    "--finetune-epochs", "2", "--out", str(tmp_path)])
    sparse, plain = out["results"]["pruned-yolo"][0], out["results"]["no-sparsity"][0]
    assert sparse[-1]["gamma_small_fraction"] > 0.2 and plain[-1]["gamma_small_fraction"] == 0.0  # L1 + soft mask
    assert sparse[1]["params"] < sparse[0]["params"] < 16_794  # each iteration prunes further
    assert sparse[-1]["acc_finetuned"] >= 0.85
    assert "fine-tuned acc %" in capsys.readouterr().out


@pytest.mark.slow
def test_cupnet_experiment(tmp_path, capsys):
    exp = _load_experiment("cupnet")
    out = exp.main(["--seeds", "0", "--samples", "300", "--epochs", "40", "--depths", "1", "--alphas", "8",
                    "--trees", "20", "--out", str(tmp_path)])
    row = out["rows"][0]
    assert row["n_ref"] >= row["n_cup"] and row["refnet_width"] > 0
    assert row["cupnet"][0] > 0.5 and out["forest"][0] > 0.5  # both learn the deformation
    assert "RefNet R²" in capsys.readouterr().out


NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "colabs", "*.ipynb")))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
