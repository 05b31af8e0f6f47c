"""End-to-end runs of the experiments and the notebooks (marked slow; CI runs them too), and the CIFAR paths on TFDS
mock data (unmarked: compilation-bound, they run in the -O0 unit pass)."""

import glob
import importlib.util
import os
import sys

import numpy as np
import pytest
from conftest import REPO


def _load_experiment(name):
    path = os.path.join(REPO, "experiments", f"{name}.py")
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(f"exp_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses (Flax modules) defined in the script look their module up
    spec.loader.exec_module(mod)
    main = mod.main

    def main_then_check_verdict(argv=None):  # every experiment ends with its "paper vs here" block
        result = main(argv)
        if argv and "--out" in argv:
            _check_verdict(argv[argv.index("--out") + 1])
        return result

    mod.main = main_then_check_verdict
    return mod


def _check_verdict(out):
    import json

    with open(os.path.join(out, "verdict.json")) as fh:
        rows = json.load(fh)
    assert rows, f"{out}: empty verdict"
    for r in rows:
        assert set(r) == {"claim", "paper", "here", "verdict", "why"}, r
        assert r["verdict"] in ("supports", "does not support") or r["verdict"].startswith("not comparable ("), r
        assert all(isinstance(v, str) and v for v in r.values()), r


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
    import jax
    from test_lipschitz import GOLDEN

    cache = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "suite_cache"))  # as with JAXKIT_JAX_CACHE_DIR
    try:
        exp = _load_experiment("lipbab_table1")
        rows = exp.main(
            ["--sources", "golden", "--nets", "iris_4-5-5-3,sd_10-30-30-30-3", "--out", str(tmp_path), "--no-progress"]
        )  # the networks shipped with jaxkit
        kept = jax.config.jax_compilation_cache_dir
    finally:
        jax.config.update("jax_compilation_cache_dir", cache)
    assert kept == str(tmp_path / "suite_cache")  # the script keeps the suite's (cold in CI) cache
    assert len(rows) == 6
    for r in rows:
        name, p = r["net"].split()[1], {"1": 0, "2": 1, "inf": 2}[r["p"]]
        assert r["is_exact"] and abs(r["exact"] - GOLDEN[name][1][p]) <= 1e-9 * GOLDEN[name][1][p]
        assert r["first"] >= r["k2"] >= r["exact"] and r["k1.5"] <= 1.5 * r["lower"] + 1e-9
    assert os.path.exists(tmp_path / "convergence.png")


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--golden-dir", "no_such_dir"], "--golden-dir: 'no_such_dir' has no iris_4-5-5-3.npz"),
        (["--nets", "foo"], "--nets: expected a comma list of"),
        (["--sources", "golden,bar"], "--sources: expected a comma list of golden, trained"),
    ],
)
def test_lipbab_table1_rejects_bad_arguments_before_any_work(tmp_path, capsys, argv, says):
    (tmp_path / "table1.json").write_text("earlier result")
    exp = _load_experiment("lipbab_table1")
    with pytest.raises(SystemExit) as e:
        exp.main(argv + ["--out", str(tmp_path)])
    assert e.value.code == 2 and says in capsys.readouterr().err
    assert (tmp_path / "table1.json").read_text() == "earlier result"


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
    out = exp.main(
        [
            "--seeds",
            "0",
            "--pretrain-epochs",
            "8",
            "--iterations",
            "2",
            "--sparsity-epochs",
            "2",
            "--finetune-epochs",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    sparse, plain = out["results"]["pruned-yolo"][0], out["results"]["no-sparsity"][0]
    assert sparse[-1]["gamma_small_fraction"] > 0.2 and plain[-1]["gamma_small_fraction"] == 0.0  # L1 + soft mask
    assert sparse[1]["params"] < sparse[0]["params"] < 16_794  # each iteration prunes further
    assert sparse[-1]["acc_finetuned"] >= 0.85
    assert "fine-tuned acc %" in capsys.readouterr().out


@pytest.mark.slow
def test_cupnet_experiment(tmp_path, capsys):
    exp = _load_experiment("cupnet")
    out = exp.main(
        [
            "--seeds",
            "0",
            "--samples",
            "300",
            "--epochs",
            "40",
            "--depths",
            "1",
            "--alphas",
            "8",
            "--trees",
            "20",
            "--out",
            str(tmp_path),
        ]
    )
    row = out["rows"][0]
    assert row["n_ref"] >= row["n_cup"] and row["refnet_width"] > 0
    assert row["cupnet"][0] > 0.5 and out["forest"][0] > 0.5  # both learn the deformation
    assert "RefNet R²" in capsys.readouterr().out


# --dim 8 / batch 64 as the other GAN runs (and the notebook): one compiled train step, shared through the
# persistent compilation cache by the tests of the "gan" xdist group (one worker, one after another)
HS_SMALL = [
    "--size",
    "40",
    "--iterations",
    "40",
    "--checkpoint-every",
    "20",
    "--dim",
    "8",
    "--runs",
    "2",
    "--min-iterations",
    "5",
    "--no-progress",
]


@pytest.mark.slow
@pytest.mark.xdist_group("gan")
def test_hyperspectral_experiment_resumes_and_stops_on_nan(tmp_path, capsys, monkeypatch):
    from jaxkit.checkpoint import Checkpointer

    exp = _load_experiment("hyperspectral_wgan_gp")
    ck = str(tmp_path / "ck")
    out = exp.main(HS_SMALL + ["--out", str(tmp_path), "--checkpoint-dir", ck])
    assert [r["iteration"] for r in out["history"]] == [20, 40] and "critic_auc" in out["history"][0]
    assert {"global RX", "GMM", "critic -D(x)", "recreation 2x5"} <= set(out["tables"])
    text = capsys.readouterr().out
    assert "logAUC chance" in text and "lgFAR" in text
    assert os.path.exists(tmp_path / "roc_semilog.png") and os.path.exists(tmp_path / "heatmaps.png")
    # a loss that turns NaN after 70 stops a 100-iteration run and keeps the last good checkpoint (60); the same
    # command then resumes there and finishes; another configuration on that folder is a one-line error (exit 2)
    # (one folder for all three: each run costs ~10 s of tracing and cache loads)
    long = (
        HS_SMALL[:2]
        + ["--iterations", "100"]
        + HS_SMALL[4:]
        + ["--out", str(tmp_path / "long"), "--checkpoint-dir", ck + "_long"]
    )
    orig = exp.gan.make_train_step

    def nan_after_70(*a, **k):
        step = orig(*a, **k)

        def wrapped(state, real, key):
            new, m = step(state, real, key)
            return new, ({**m, "critic_loss": float("nan")} if int(new.step) > 70 else m)

        return wrapped

    monkeypatch.setattr(exp.gan, "make_train_step", nan_after_70)
    out = exp.main(long)
    assert "loss turned NaN/inf at iteration 71" in capsys.readouterr().out
    assert [r["iteration"] for r in out["history"]] == [20, 40, 60]
    with Checkpointer(ck + "_long") as c:
        assert c.latest_step() == 60
    monkeypatch.setattr(exp.gan, "make_train_step", orig)
    out = exp.main(long)
    assert f"resumed from iteration 60 of 100 in {ck}_long" in capsys.readouterr().out
    assert [r["iteration"] for r in out["history"]] == [20, 40, 60, 80, 100]
    for other in (["--lambda-gp", "5"], ["--iterations", "120"], ["--seed", "1"]):
        with pytest.raises(SystemExit) as e:
            exp.main(long + other)
        err = capsys.readouterr().err
        assert e.value.code == 2 and "made by a different run" in err and "--restart" in err, err


@pytest.mark.slow
@pytest.mark.xdist_group("gan")
def test_hyperspectral_gan_detects_the_bright_and_camouflage_targets(tmp_path):
    exp = _load_experiment("hyperspectral_wgan_gp")
    out = exp.main(
        [
            "--size",
            "64",
            "--iterations",
            "500",
            "--checkpoint-every",
            "500",
            "--min-iterations",
            "30",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    auc = {m: {r["target"]: r["auc"] for r in rows} for m, rows in out["tables"].items()}
    rec = auc["recreation 4x30"]  # a short run: 0.999 / 0.900 here (800 iterations x 4x50 restarts: ~0.99 / 0.91)
    for target in ("bright panel", "camouflage panel"):
        assert auc["global RX"][target] >= 0.9 and rec[target] >= 0.85, (target, auc["global RX"][target], rec[target])
    assert max(auc["GMM"]["in-ellipsoid"], auc["critic -D(x)"]["in-ellipsoid"]) > auc["global RX"]["in-ellipsoid"] + 0.2
    # hard for every method: AUC well below the >= 0.9 of the easy targets, logAUC near chance
    assert all(a["low-contrast"] < 0.8 for a in auc.values()), {m: a["low-contrast"] for m, a in auc.items()}
    assert all(r["log_auc"] < 0.25 for rows in out["tables"].values() for r in rows if r["target"] == "low-contrast")


@pytest.mark.slow
def test_gator_digits(tmp_path, capsys):
    exp = _load_experiment("gator_digits")
    out = exp.main(
        [
            "--seeds",
            "0",
            "--kinds",
            "flops",
            "--alphas",
            "2",
            "4",
            "--pretrain-epochs",
            "6",
            "--gated-epochs",
            "3",
            "--finetune-epochs",
            "2",
            "--alpha-ramp",
            "10",
            "--temperature",
            "2",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    r = out["rows"]["flops:4.0"]
    assert r["macs"][0] <= out["rows"]["flops:2.0"]["macs"][0]  # the iterative loop only prunes more
    assert out["unpruned"][0] >= 0.9
    assert r["macs"][0] <= r["l1_macs"][0] * 1.05 + 1  # the L1 baseline is matched to Gator's MACs
    assert r["acc"][0] >= 0.8 and r["l1_acc"][0] >= 0.5
    assert "blocks removed" in capsys.readouterr().out and os.path.exists(tmp_path / "tradeoff.png")


@pytest.mark.slow
def test_blend_prune_digits_blended_within_tolerance_of_best_single(tmp_path, capsys):
    exp = _load_experiment("blend_prune_digits")
    argv = [
        "--seeds",
        "0",
        "1",
        "--popsize",
        "6",
        "--generations",
        "3",
        "--fitness-epochs",
        "1",
        "--pretrain-epochs",
        "8",
        "--finetune-epochs",
        "3",
        "--no-progress",
        "--checkpoint",
        str(tmp_path / "ckpt"),
        "--out",
        str(tmp_path),
    ]
    out = exp.main(argv)
    rows = out["rows"]
    blended = sum(rows["blended (EA)"]["finetuned"]) / 2
    best_single = max(sum(r["finetuned"]) / 2 for c, r in rows.items() if c != "blended (EA)")
    # stated tolerance: over 2 seeds the searched blend is within 3 points of the best of 12 criteria
    # (picked after the fact on test accuracy, which favours the baseline)
    assert blended >= best_single - 0.03, (blended, best_single)
    assert min(out["unpruned"]) >= 0.9 and len(out["history"]) == 2 and len(out["history"][0]) == 3
    text = capsys.readouterr().out
    assert "blended (EA)" in text and "fine-tuned acc %" in text and os.path.exists(tmp_path / "blend_search.png")
    assert os.path.isdir(tmp_path / "ckpt" / "seed0" / "pretrain") and os.path.isdir(tmp_path / "ckpt" / "seed0" / "ea")
    # the same command again redoes nothing: pre-training and the EA resume finished, the generation-0 analysis
    # (Pearson / Spearman, Fig. 3) and both seeds' full fine-tunes come back from the checkpoint folder
    again = exp.main(argv)
    text2 = capsys.readouterr().out
    assert text2.count("reused") == 2 and ("Pearson" in text2) == ("Pearson" in text)
    assert again["rows"] == out["rows"]


def test_gator_recipe_flag_sets_the_papers_cifar_recipe():
    exp = _load_experiment("gator_digits")
    a = exp.parse_args(["--recipe", "cifar-resnet56", "--seeds", "3"])
    assert (a.dataset, a.stages, a.widths, a.optimizer, a.schedule) == (
        "tfds:cifar10",
        "9,9,9",
        "16,32,64",
        "sgd",
        "paper",
    )
    assert (a.pretrain_epochs, a.gated_epochs, a.finetune_epochs, a.batch_size) == (240, 90, 30, 128)
    assert (a.lr, a.model_lr, a.finetune_lr, a.weight_decay, a.seeds) == (0.1, 0.01, 1e-3, 1e-4, [3])
    assert exp.parse_args(["--recipe", "cifar-resnet56", "--gated-epochs", "2"]).gated_epochs == 2  # flags win
    d = exp.parse_args([])
    assert (d.dataset, d.optimizer, d.finetune_lr, d.temperature, d.alpha_ramp) == (
        "digits",
        "adam",
        d.model_lr,
        None,
        0,
    )
    # the paper's x0.1 points: 120/180 of 240 epochs, 60 of 90 gated epochs
    assert [int(f * 240) for f in exp.PAPER_DECAY["pretrain"]] == [120, 180]
    assert [round(f * 90) for f in exp.PAPER_DECAY["gated"]] == [60]


def test_fair_moea_resumes_exactly(tmp_path):
    exp = _load_experiment("fair_moea")
    args = exp.parse_args(
        ["--data", "synthetic", "--samples", "400", "--popsize", "6", "--generations", "4", "--checkpoint-every", "1"]
        + ["--no-progress"]
    )
    d = exp.load(args)
    args.sensitive = list(d.sensitive)
    splits = d.split(seed=0)
    k = d.groups()[1]
    straight = exp.run_one(args, "EIG", 0, splits, k, str(tmp_path / "a"))
    args.generations = 2  # "interrupted" after two generations ...
    exp.run_one(args, "EIG", 0, splits, k, str(tmp_path / "b"))
    args.generations = 4  # ... and resumed from its checkpoint
    resumed = exp.run_one(args, "EIG", 0, splits, k, str(tmp_path / "b"))
    assert len(resumed["test"]) == 4
    np.testing.assert_allclose(resumed["test"], straight["test"], rtol=1e-6)
    # another configuration on the same folder is refused, never continued (main keys folders by the same dict)
    from jaxkit.checkpoint import CheckpointMismatch

    with pytest.raises(CheckpointMismatch, match="trial"):
        exp.run_one(args, "EIG", 1, splits, k, str(tmp_path / "b"))
    with pytest.raises(CheckpointMismatch, match=r"config\['run'\]"):
        exp.run_one(args, "EIG", 0, splits, k, str(tmp_path / "b"), {"sigma": 0.5})
    args.popsize = 8
    with pytest.raises(CheckpointMismatch, match="there and"):
        exp.run_one(args, "EIG", 0, splits, k, str(tmp_path / "b"))


@pytest.mark.slow
def test_fair_moea_experiment_tables(tmp_path, capsys):
    exp = _load_experiment("fair_moea")
    argv = [
        "--data",
        "synthetic",
        "--samples",
        "600",
        "--popsize",
        "8",
        "--generations",
        "4",
        "--trials",
        "2",
        "--no-progress",
        "--variants",
        "E",
        "EIG",
        "--out",
        str(tmp_path),
    ]
    res = exp.main(argv)
    text = capsys.readouterr().out
    for table in ("Table 1", "Table 2", "Table 3", '"seeds"'):
        assert table in text
    assert set(res["variants"]) == {"E", "EIG"}
    assert all(len(v["hv_curve_test"]) == 4 and len(v["hv"]) == 2 for v in res["variants"].values())
    assert os.path.exists(tmp_path / "hv_curves.png") and os.path.exists(tmp_path / "pareto_front_3d.png")
    exp.main(argv)  # a second call reuses the finished runs
    assert "generations in" not in capsys.readouterr().out


@pytest.mark.slow
def test_ece_estimators_experiment(tmp_path, capsys):
    exp = _load_experiment("ece_estimators")
    res = exp.main(
        [
            "--classes",
            "3",
            "--dims",
            "2",
            "--models",
            "logistic",
            "naive_bayes",
            "--holdout",
            "20000",
            "--true-bins",
            "200",
            "--sizes",
            "30",
            "200",
            "--sets",
            "40",
            "--out",
            str(tmp_path),
            "--estimators",
            "ECE_l sqrtN",
            "ECE_c sqrtN",
            "ECE_d (KDE, Gaussian)",
        ]
    )
    text = capsys.readouterr().out
    assert "confidence ECE: median" in text and "classwise ECE: median" in text
    err = res["p95_relative_error"]["confidence"]
    for e in err:  # more samples, smaller error (stated: for every estimator, N = 200 beats N = 30)
        assert np.median(err[e][200]) < np.median(err[e][30]), e
    assert os.path.exists(tmp_path / "relative_error.png")


@pytest.mark.slow
def test_similarity_label_smoothing_experiment(tmp_path, capsys):
    exp = _load_experiment("similarity_label_smoothing")
    res = exp.main(["--seeds", "0", "--epochs", "6", "--hidden", "64", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "autoencoder similarity LS" in text and "temperature fitted" in text
    assert all(r[0]["accuracy"] > 0.9 for r in res.values())
    assert os.path.exists(tmp_path / "reliability.png")


@pytest.mark.slow
def test_reward_gating_experiment_tables_and_exact_resume(tmp_path, capsys, monkeypatch):
    exp = _load_experiment("reward_gating")
    argv = [
        "--seeds",
        "2",
        "--steps",
        "400",
        "--chunk",
        "200",
        "--bins",
        "20",
        "--warmup",
        "50",
        "--buffer",
        "400",
        "--hidden",
        "8,8",
        "--no-progress",
    ]
    ref = exp.main(argv + ["--out", str(tmp_path / "a")])
    text = capsys.readouterr().out
    assert "Table 2" in text and "Table 3" in text and "Reliability" in text and '"seeds": [' in text
    assert set(ref["agents"]) == set(exp.rl.AGENTS) and len(ref["agents"]["gated"]["avg_return"]) == 2
    assert os.path.exists(tmp_path / "a" / "learning_curves.png")
    # stop after the first chunk, then start again: it resumes and ends where the uninterrupted run ended
    real, calls = exp.accumulate, []

    def stop_second(*a):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(exp, "accumulate", stop_second)
    with pytest.raises(SystemExit) as stop:  # Ctrl-C: one line, status 130, no results written
        exp.main(argv + ["--out", str(tmp_path / "b")])
    assert stop.value.code == 130 and "interrupted" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "b" / "results.json")
    assert not [p for p in os.listdir(tmp_path) if ".partial-" in p]
    monkeypatch.setattr(exp, "accumulate", real)
    res = exp.main(argv + ["--out", str(tmp_path / "b")])
    assert "resumed from step 200 of 400 in" in capsys.readouterr().out
    for a in exp.rl.AGENTS:
        np.testing.assert_allclose(res["agents"][a]["curves"], ref["agents"][a]["curves"], rtol=1e-5, atol=1e-7)
    # the run's folder is keyed by its configuration, and its checkpoints refuse any other run (here: other keys)
    import jax
    import jax.numpy as jnp

    from jaxkit.checkpoint import CheckpointMismatch

    args = exp.parse_args(argv + ["--out", str(tmp_path / "b")])
    keep = {k: v for k, v in vars(args).items() if k not in ("out", "no_progress", "chunk", "full", "restart")}
    seeds = [args.seed + s for a in args.agents for s in range(args.seeds)]
    keys = jnp.stack([jax.random.key_data(jax.random.key(s + 1)) for s in seeds])
    kinds = exp.rl.kinds_index([a for a in args.agents for _ in range(args.seeds)])
    (ckdir,) = glob.glob(str(tmp_path / "b" / "checkpoints" / "*"))
    with pytest.raises(CheckpointMismatch, match=r"config\['keys'\]"):
        exp.train(args, exp.make_trainer(args), kinds, keys, ckdir, keep)


@pytest.mark.slow
def test_weight_gradient_centralization_experiment(tmp_path, capsys):
    exp = _load_experiment("weight_gradient_centralization")
    res = exp.main(
        ["--variants", "baseline", "WC+GC", "--bn", "off", "--seeds", "0", "--epochs", "6", "--out", str(tmp_path)]
    )
    text = capsys.readouterr().out
    assert "Test accuracy, mean ± std over seeds [0]" in text and "WC+GC" in text
    assert set(res) == {"baseline / BN off", "WC+GC / BN off"}
    assert all(a[0] > 0.7 for a in res.values())  # both learn the digits in 6 epochs (81 % and 87 % here)
    assert os.path.exists(tmp_path / "results.json")


@pytest.mark.slow
def test_jacobian_reg_uap_experiment(tmp_path, capsys):
    exp = _load_experiment("jacobian_reg_uap")
    res = exp.main(
        [
            "--methods",
            "standard",
            "jacobian",
            "--seeds",
            "0",
            "--epochs",
            "3",
            "--eps",
            "0.2",
            "--targets",
            "1",
            "--uap-steps",
            "20",
            "--sim-samples",
            "40",
            "--out",
            str(tmp_path),
        ]
    )
    text = capsys.readouterr().out
    assert "Table 1 layout" in text and "UER % eps=0.2" in text and "median J-sim" in text
    for m in ("standard", "jacobian"):
        r = res[m][0]
        assert r["error"] < 0.5 and 0 <= r["uer"][0.2] <= 1 and -1 <= r["similarity"] <= 1
    assert os.path.exists(tmp_path / "jacobian_similarity.png")


@pytest.mark.slow
def test_localnorm_noise_experiment(tmp_path, capsys):
    exp = _load_experiment("localnorm_noise")
    acc = exp.main(
        [
            "--seeds",
            "0",
            "--epochs",
            "3",
            "--sigmas",
            "0",
            "1.5",
            "--rates",
            "0.4",
            "--convert",
            "--finetune-epochs",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    text = capsys.readouterr().out
    assert "multiplicative noise" in text and "LocalNorm batch_vote" in text
    assert {
        "BN",
        "dynamic BN",
        "LocalNorm single",
        "LocalNorm single_vote",
        "LocalNorm groups",
        "LocalNorm batch_vote",
        "BN -> LocalNorm single_vote",
    } == set(acc)
    assert acc["BN"]["gauss 0.0"][0] > acc["BN"]["gauss 1.5"][0]  # noise hurts
    assert os.path.exists(tmp_path / "accuracy_vs_noise.png")


@pytest.mark.slow
def test_hir_rotated_digits_experiment(tmp_path, capsys):
    exp = _load_experiment("hir_rotated_digits")
    res = exp.main(
        ["--seeds", "0", "--steps", "50", "--test-domains", "0", "--methods", "CE", "MK-MMD", "--small-batch"]
        + ["--out", str(tmp_path)]
    )  # HIR runs in the small-batch comparison
    text = capsys.readouterr().out
    assert "Table 3.2 layout" in text and "unpaired vs paired" in text
    for m in ("CE", "MK-MMD"):
        assert res["accuracy"][m]["M0"][0] > 0.2  # well above chance (0.1) after 50 steps; none diverged
    assert all(v[0] > 0.2 for v in res["small_batch"]["unpaired"].values())
    assert set(res["small_batch"]) == {"paired", "unpaired"}


@pytest.mark.slow
def test_imbalance_digits_experiment(tmp_path, capsys):
    exp = _load_experiment("imbalance_digits")
    res = exp.main(["--seeds", "0", "--steps", "600", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "Per-class test recall" in text and "balanced sampling" in text
    bal = {m: float(r.mean()) for m, r in res.items()}
    assert bal["balanced sampling"] > bal["CE"] and bal["weighted CE"] > bal["CE"]  # rebalancing helps the tail
    assert os.path.exists(tmp_path / "confusion_matrices.png")


@pytest.mark.slow
def test_softrmax_robustness_experiment(tmp_path, capsys):
    exp = _load_experiment("softrmax_robustness")
    res = exp.main(
        [
            "--tasks",
            "3v7",
            "--seeds",
            "0",
            "--epochs",
            "8",
            "--eps",
            "0.3",
            "--bim-steps",
            "3",
            "--bim-many",
            "6",
            "--curve-eps",
            "0",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    text = capsys.readouterr().out
    assert "Table 5.1 layout" in text and "subst. BIM 0.3" in text and "per target class" in text
    assert "BIM-margin 0.3" in text
    sm, sr = res["3v7/softmax"][0], res["3v7/softrmax"][0]
    assert sm["clean"] > 0.9 and sr["clean"] > 0.9
    assert sr["fgsm"][0] > sm["fgsm"][0]  # the conservative head is harder to fool at eps 0.3
    assert sr["posterior_curve"][-1] < sm["posterior_curve"][-1]  # and less confident far from the data
    assert os.path.exists(tmp_path / "ratio_and_posterior.png")


@pytest.mark.slow
def test_gradcam_manipulation_experiment(tmp_path, capsys):
    exp = _load_experiment("gradcam_manipulation")
    res = exp.main(["--seeds", "0", "--epochs", "3", "--grid", "2", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "L1 to target" in text and "T4 + stickers" in text
    r = res[0]
    assert r["T1"]["l1"] < 1e-2 and r["T2"]["l1"] < 1e-2 and r["T3"]["l1"] < 1e-2
    assert r["T3"]["dlogit_term"] == 0.0 and r["T4"]["l1"] < 1e-6 and r["T4"]["l1_stickers"] < 1e-2
    assert abs(r["T2"]["acc"] - r["clean"]) < 0.01
    assert os.path.exists(tmp_path / "gradcam_grid.png")


@pytest.mark.slow
def test_saliency_entropy_detection_experiment(tmp_path, capsys):
    exp = _load_experiment("saliency_entropy_detection")
    res = exp.main(
        ["--seeds", "0", "--epochs", "3", "--eps", "0.2", "--pgd-steps", "3", "--grid", "2", "--out", str(tmp_path)]
    )
    text = capsys.readouterr().out
    assert "AUC (fooled only)" in text and "pgd@0.2" in text
    r = res[0]["fgsm@0.2"]
    assert 0 <= r["auc"] <= 1 and r["fooled"] > 0.3 and r["fpr"] < 0.2
    assert os.path.exists(tmp_path / "roc.png") and os.path.exists(tmp_path / "maps_grid.png")


NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "colabs", "*.ipynb")))


# The GAN notebook runs in the GAN runs' xdist_group: run beside them instead (measured, cold cache) the slow pass
# took 497 s instead of 435-474 s -- three compute-heavy GAN programs at once on two cores.
NOTEBOOK_PARAMS = [
    pytest.param(p, id=os.path.basename(p), marks=[pytest.mark.xdist_group("gan")] if "hyperspectral" in p else [])
    for p in NOTEBOOKS
]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOK_PARAMS)
def test_notebook_runs_top_to_bottom(path):
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": os.path.dirname(path)}}
    )
    # Notebooks are demo-sized, so compile-bound: XLA's -O0 ran them 0-40 % faster (measured on 8 of them; the
    # GAN notebook, the one compute-heavy, is unchanged), as for the unit tests (see the Makefile).
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        flags = f"{flags} --xla_backend_optimization_level=0".strip()
    client.execute(env=dict(os.environ, XLA_FLAGS=flags))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


# ------------------------------------------------------------------------- full-size (CIFAR) paths, on mock data
_CIFAR_TINY = ["--seeds", "0"]  # and a batch of 16 (LocalNorm: 2 groups of 8)
CIFAR_PATHS = {
    name: argv.split()
    for name, argv in {
        "prune_digits": "--batch-size 16 --dataset tfds:cifar10 --cfg 8,M,8,M --epochs 1 --finetune-epochs 1 "
        "--spearman-layer params/Conv_1 --stat-batches 1",
        "bfrifp_digits": "--batch-size 16 --dataset tfds:cifar10 --cfg 8,M,8 --pretrain-epochs 1 --epochs 1",
        "pruned_yolo_digits": "--batch-size 16 --dataset tfds:cifar10 --cfg 8,M,8 --pretrain-epochs 1 --iterations 1 "
        "--sparsity-epochs 1 --finetune-epochs 1",
        "blend_prune_digits": "--batch-size 16 --dataset tfds:cifar100 --cfg 8,M,8 --pretrain-epochs 1 --popsize 4 "
        "--generations 1 --fitness-epochs 1 --finetune-epochs 1 --top 1 --stat-batches 1",
        "gator_digits": "--batch-size 16 --recipe cifar-resnet56 --stages 1,1,1 --widths 8,8,8 --pretrain-epochs 1 "
        "--gated-epochs 1 --finetune-epochs 1 --alphas 1 --kinds flops",
        "localnorm_noise": "--dataset tfds:cifar10 --widths 8 --groups 2 --group-size 8 --epochs 1 --sigmas 0 1 "
        "--rates 0.2",
        "weight_gradient_centralization": "--batch-size 16 --dataset tfds:cifar10 --cfg 8,M --epochs 1 "
        "--variants baseline WC --bn off",
    }.items()
}


@pytest.mark.parametrize("name", sorted(CIFAR_PATHS))
def test_cifar_paths_run_on_tfds_mock_data_with_the_standard_augmentation(name, tmp_path, monkeypatch):
    """Each CIFAR recipe (tfds cifar10/cifar100, ResNet-56 recipe for Gator) runs end to end on TFDS's mock data
    (random 32x32x3 images) and trains on randomly cropped and flipped batches (``--augment auto``). Not marked
    slow: on 64 tiny examples the run is all compilation, which the unit pass's -O0 does ~40 % faster."""
    import tensorflow_datasets as tfds

    from jaxkit import data

    calls = []
    real = data.random_crop_flip

    def spy(key, x, **kw):
        calls.append(x.shape)
        return real(key, x, **kw)

    monkeypatch.setattr(data, "random_crop_flip", spy)
    exp = _load_experiment(name)
    with tfds.testing.mock_data(num_examples=64):
        exp.main(CIFAR_PATHS[name] + _CIFAR_TINY + ["--out", str(tmp_path)])
    assert calls and all(s[1:] == (32, 32, 3) for s in calls), calls[:3]


def test_augmentation_flag_is_on_for_cifar_only():
    sys.path.insert(0, os.path.join(REPO, "experiments"))
    import expkit

    from jaxkit import data

    p = expkit.parser("x")
    p.add_argument("--dataset", default="digits")
    expkit.add_augment_flag(p)
    got = {
        argv: expkit.augmentation(p.parse_args(list(argv)))
        for argv in [(), ("--dataset", "tfds:cifar10"), ("--dataset", "tfds:cifar100", "--augment", "off")]
        + [("--augment", "on"), ("--dataset", "tfds:mnist")]
    }
    assert [v is data.random_crop_flip for v in got.values()] == [False, True, False, True, False]


def test_verdict_differences_count_only_beyond_two_standard_errors():
    sys.path.insert(0, os.path.join(REPO, "experiments"))
    import expkit

    a, b = [0.90, 0.91, 0.92], [0.80, 0.805, 0.81]
    d, text = expkit.paired(a, b)
    diff = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) * 100  # float64 reference
    se = np.std(diff, ddof=1) / np.sqrt(3)
    assert float(d) == pytest.approx(diff.mean()) and d.se == pytest.approx(se)
    assert d > 0 and not d < 0 and d > diff.mean() - 2.1 * se and not d > diff.mean() - 1.9 * se
    assert text.startswith("+10.50 ± 0.50 points over 3 seeds (beyond")
    noisy, text = expkit.paired([0.9, 0.91, 0.92], [0.89, 0.905, 0.93])  # +0.17 ± 1.04: seed noise
    assert not noisy > 0 and not noisy < 0 and "seed noise" in text
    one, text = expkit.paired([0.9], [0.1])  # one seed: no noise estimate, nothing holds
    assert not one > 0 and "one seed" in text
    assert expkit.claim("c", "p", "h", True, "w")["verdict"] == "supports"
    assert expkit.claim("c", "p", "h", False, "w")["verdict"] == "does not support"
    assert expkit.claim("c", "p", "h", True, "w", comparable="stand-in")["verdict"] == "not comparable (stand-in)"
    assert expkit.claim("c", "p", "h", None, "w")["verdict"] == "not comparable (not measured)"
