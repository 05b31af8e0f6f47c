import jax
import numpy as np
import pytest
from sklearn import datasets as skd

from jaxkit import data


def test_digits_shapes_dtypes_range_and_split(digits):
    assert digits.train.x.shape == (1437, 8, 8, 1) and digits.test.x.shape == (360, 8, 8, 1)
    assert digits.train.x.dtype == np.float32 and digits.train.y.dtype == np.int32
    assert digits.num_classes == 10 and digits.input_shape == (8, 8, 1)
    assert 0.0 <= digits.train.x.min() and digits.train.x.max() <= 1.0
    # Every original image appears exactly once across the two splits (reference: sklearn's raw data).
    raw = skd.load_digits()
    ours = np.concatenate([digits.train.x, digits.test.x]).reshape(len(raw.target), -1) * 16
    ours_sorted = ours[np.lexsort(ours.T)]
    raw_sorted = raw.data[np.lexsort(raw.data.T)]
    np.testing.assert_allclose(ours_sorted, raw_sorted, atol=1e-5)
    # Stratified: class proportions of the test split within one sample of the whole set's.
    counts = np.bincount(digits.test.y, minlength=10)
    np.testing.assert_allclose(counts, np.bincount(raw.target) * 0.2, atol=1.0)


def test_loaders_are_deterministic_and_seed_dependent():
    a, b, c = data.load_digits(seed=3), data.load_digits(seed=3), data.load_digits(seed=4)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.y, c.train.y)
    flat = data.load_digits(images=False)
    assert flat.train.x.shape == (1437, 64)


def test_tabular_loaders_and_standardisation_uses_train_statistics():
    iris = data.load_iris()
    assert iris.train.x.shape == (120, 4) and iris.num_classes == 3
    bc = data.load_breast_cancer()
    assert bc.train.x.shape[1] == 30 and bc.num_classes == 2
    np.testing.assert_allclose(bc.train.x.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(bc.train.x.std(0), 1.0, atol=1e-4)
    assert np.abs(bc.test.x.mean(0)).max() > 1e-3  # test split is not re-centred on itself


def test_make_classification_matches_sklearn_and_is_deterministic():
    d = data.make_classification(200, 10, 3, seed=7)
    d2 = data.make_classification(200, 10, 3, seed=7)
    np.testing.assert_array_equal(d.train.x, d2.train.x)
    x, y = skd.make_classification(
        n_samples=200, n_features=10, n_classes=3, n_informative=3, n_redundant=2, random_state=7
    )
    assert sorted(map(tuple, np.round(np.concatenate([d.train.x, d.test.x]), 4))) == sorted(
        map(tuple, np.round(x.astype(np.float32), 4))
    )
    assert d.num_classes == 3 and d.train.x.dtype == np.float32


def test_batches_cover_every_row_once_and_are_reproducible():
    x = np.arange(23)[:, None].astype(np.float32)
    y = np.arange(23)
    key = jax.random.key(0)
    got = list(data.batches(key, x, y, batch_size=5))
    assert [len(b[1]) for b in got] == [5, 5, 5, 5, 3] == [5] * (data.num_batches(23, 5) - 1) + [3]
    seen = np.concatenate([b[1] for b in got])
    assert sorted(seen) == list(range(23)) and not np.array_equal(seen, y)
    np.testing.assert_array_equal(seen, np.concatenate([b[1] for b in data.batches(key, x, y, batch_size=5)]))
    for xb, yb in got:
        np.testing.assert_array_equal(xb[:, 0], yb)  # rows stay aligned
    assert len(list(data.batches(None, x, y, batch_size=5, drop_remainder=True))) == 4
    np.testing.assert_array_equal(next(data.batches(None, x, batch_size=4))[0][:, 0], [0, 1, 2, 3])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="`test_size` must lie in"):
        data.load_digits(test_size=1.5)
    with pytest.raises(ValueError, match="`n_classes` must be >= 2"):
        data.make_classification(100, 5, 1)
    with pytest.raises(ValueError, match="array 1 has 3 rows"):
        next(data.batches(None, np.zeros(4), np.zeros(3), batch_size=2))
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        next(data.batches(None, np.zeros(4), batch_size=0))
    with pytest.raises(ValueError, match="x has 2 rows but y has 3"):
        data.Split(np.zeros((2, 1)), np.zeros(3))


def test_load_tfds_reads_local_data_without_network():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        ds = data.load_tfds("mnist", max_examples=10)
    assert ds.train.x.shape == (10, 28, 28, 1) and ds.test.x.shape == (10, 28, 28, 1)
    assert ds.train.x.dtype == np.float32 and ds.train.x.max() <= 1.0
    assert ds.train.y.dtype == np.int32 and ds.num_classes == 10


def test_load_tfds_missing_data_says_how_to_prepare_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="tfds build mnist --file_format=array_record"):
        data.load_tfds("mnist", data_dir=tmp_path)
    with pytest.raises(ValueError, match="`splits` must name"):
        data.load_tfds("mnist", splits=("train",))


def test_select_classes_relabels_in_the_given_order():
    from jaxkit import data

    ds = data.load_digits(seed=0)
    sub = data.select_classes(ds, (7, 3))
    assert sub.num_classes == 2 and sub.name == "digits[7,3]"
    for split, full in ((sub.train, ds.train), (sub.test, ds.test)):
        assert len(split) == int(np.sum((full.y == 3) | (full.y == 7)))
        np.testing.assert_array_equal(split.x[split.y == 0], full.x[full.y == 7])  # 7 -> 0, order kept
    with pytest.raises(ValueError, match="distinct"):
        data.select_classes(ds, (3, 3))
    with pytest.raises(ValueError, match="not labels"):
        data.select_classes(ds, (3, 12))


def test_load_scene_names_the_file_and_format_when_it_cannot_read_it(tmp_path):
    import pickle

    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "cut.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 20)
    (tmp_path / "cut.npz").write_bytes(pickle.dumps([1, 2])[:5])
    np.save(tmp_path / "flat.npy", np.ones(5, np.float32))
    cases = [
        ("empty.npy", "a NumPy .npy array"),
        ("objects.npy", "pickled objects, which jaxkit never loads"),
        ("cut.mat", "a MATLAB .mat file"),
        ("cut.npz", "a NumPy .npz archive"),
        ("flat.npy", "[H, W, B]"),
    ]
    for name, says in cases:
        with pytest.raises(ValueError) as e:
            data.load_scene(str(tmp_path / name))
        msg = str(e.value)
        assert str(tmp_path / name) in msg and says in msg and "allow_pickle" not in msg, msg
    with pytest.raises(FileNotFoundError, match="missing.npy does not exist"):
        data.load_scene(str(tmp_path / "missing.npy"))


# ------------------------------------------------------------------------------------- CIFAR augmentation
def _candidates(img, p):
    """Every crop of the zero-padded image and its mirror (float64 numpy, the brute-force reference)."""
    h, w, _ = img.shape
    padded = np.pad(np.asarray(img, np.float64), ((p, p), (p, p), (0, 0)))
    out = {}
    for dy in range(2 * p + 1):
        for dx in range(2 * p + 1):
            crop = padded[dy : dy + h, dx : dx + w]
            out[(dy, dx, False)] = crop
            out[(dy, dx, True)] = crop[:, ::-1]
    return out


def _which(aug, img, p):
    hits = [k for k, c in _candidates(img, p).items() if np.array_equal(c, np.asarray(aug, np.float64))]
    assert hits, "the output is no crop/flip of the padded input"
    return hits


def test_random_crop_flip_gives_a_crop_of_the_padded_image_or_its_mirror():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (64, 6, 5, 3)).astype(np.float32)  # no zeros: crops are told apart from padding
    out = data.random_crop_flip(jax.random.key(1), x, padding=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = {_which(o, img, 2)[0] for o, img in zip(np.asarray(out), x)}
    assert len(seen) > 20  # offsets and flips differ across the batch
    # the same key, the same batch; another key, another batch; under jit the same values (pure data movement:
    # no arithmetic touches a pixel, so exact equality is the stated tolerance)
    np.testing.assert_array_equal(out, data.random_crop_flip(jax.random.key(1), x, padding=2))
    assert not np.array_equal(out, data.random_crop_flip(jax.random.key(2), x, padding=2))
    jitted = jax.jit(lambda k, b: data.random_crop_flip(k, b, padding=2))
    np.testing.assert_array_equal(out, jitted(jax.random.key(1), x))
    legacy = data.random_crop_flip(jax.random.PRNGKey(1), x, padding=2)  # raw uint32 keys work too
    assert legacy.shape == x.shape


def test_random_crop_flip_draws_every_offset_and_flips_half_the_images():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 1.0, (4000, 3, 3, 1)).astype(np.float32)
    out = np.asarray(data.random_crop_flip(jax.random.key(0), x, padding=1))
    counts = {}
    for o, img in zip(out, x):
        for k in _which(o, img, 1):
            counts[k] = counts.get(k, 0) + 1 / len(_which(o, img, 1))
    assert len(counts) == 18  # 3 x 3 offsets x 2 flips
    share = np.array(list(counts.values())) / len(x)
    np.testing.assert_allclose(share, 1 / 18, atol=0.02)  # ~5 sigma of a binomial share at n = 4000
    flipped = sum(v for k, v in counts.items() if k[2]) / len(x)
    assert abs(flipped - 0.5) < 0.04


def test_random_crop_flip_edge_cases():
    x = np.arange(2 * 4 * 4 * 1, dtype=np.uint8).reshape(2, 4, 4, 1)
    same = data.random_crop_flip(jax.random.key(0), x, padding=0, flip=False)
    np.testing.assert_array_equal(same, x)
    assert same.dtype == np.uint8
    mirrored = {
        tuple(np.asarray(data.random_crop_flip(jax.random.key(s), x[:1], padding=0))[0, 0, :, 0]) for s in range(20)
    }
    assert mirrored == {(0, 1, 2, 3), (3, 2, 1, 0)}
    with pytest.raises(ValueError, match="`x` must have 4 dimension"):
        data.random_crop_flip(jax.random.key(0), x[0])
    with pytest.raises(ValueError, match="`padding` must be an integer >= 0"):
        data.random_crop_flip(jax.random.key(0), x, padding=-1)
    with pytest.raises(TypeError, match="`key` must be a PRNG key"):
        data.random_crop_flip(0, x)
    with pytest.raises(ValueError, match="`x` is NaN"):
        data.random_crop_flip(jax.random.key(0), np.full((1, 2, 2, 1), np.nan, np.float32))


def test_prefetch_keeps_order_values_and_at_most_size_in_flight():
    taken = []

    def source():
        for i in range(7):
            taken.append(i)
            yield (np.full((2, 3), i, np.float32), np.arange(2) + i)

    got = []
    for j, (x, y) in enumerate(data.prefetch(source(), size=3)):
        assert len(taken) - j <= 3  # items drawn ahead of the one in use
        assert isinstance(x, jax.Array) and isinstance(y, jax.Array)
        got.append((float(x[0, 0]), int(y[0])))
    assert got == [(i, i) for i in range(7)]
    assert list(data.prefetch(iter([]))) == []
    with pytest.raises(ValueError, match="`size`"):
        list(data.prefetch(source(), size=0))


def test_loaders_and_synthesis_refuse_bad_settings():
    with pytest.raises(ValueError, match="`dataset` must be 'german', 'compas' or 'adult'"):
        data.shipped_data_file("mnist", "x")
    with pytest.raises(ValueError, match="`index` must hold flat pixel indices"):
        data.pixel_windows(np.ones((4, 4, 2)), 1, np.array([99]))
    x = np.ones((1, 8, 8))
    with pytest.raises(ValueError, match="`n` must be >= 1"):
        data.synthesize(x, 0)
    with pytest.raises(ValueError, match="`max_angle` must be a finite number >= 0"):
        data.synthesize(x, 2, max_angle=-1.0)
