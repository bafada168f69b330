"""A messy pooled customer table as a CRM export gives it: `;`-separated, Latin-1, with
NaN and empty cells, a 1e308, values above the public upper bound, and the hand counts
of each (issue 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SCHEMA_TOML = """\
schema_version = 1
id = "customer_id"
allow_extra_columns = true

[[numeric]]
name = "age"
lower = 18.0
upper = 100.0

[[numeric]]
name = "income"
lower = 0.0
upper = 200000.0

[[numeric]]
name = "visits"
lower = 0.0
upper = 60.0
missing = "drop"

[[categorical]]
name = "city"
values = ["Málaga", "Córdoba", "Bilbao", "missing"]
"""
UNITS = 4
CITIES = ["Málaga", "Córdoba", "Bilbao"]


def messy_table(n: int = 2400, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """(frame of text cells, facts): facts hold the cell positions of every defect."""
    rng = np.random.default_rng(seed)
    centres = np.array([[25, 30000, 5], [45, 90000, 20], [65, 50000, 40], [35, 150000, 10]], dtype=float)
    label = rng.integers(0, 4, n)
    spread = np.array([4, 8000, 3])
    X = centres[label] + rng.normal(size=(n, 3)) * spread
    X = np.clip(X, [18, 0, 0], [100, 200000, 60]).round()
    city = np.array(CITIES)[(label + rng.integers(0, 2, n)) % 3]
    cells = {c: X[:, j].astype(int).astype(str).astype(object) for j, c in enumerate(["age", "income", "visits"])}
    pick = rng.permutation(n)
    facts = {"empty_income": pick[:30], "nan_income": pick[30:45], "nan_age": pick[45:70],
             "above_age": pick[70:95], "huge_income": pick[95:96], "gap_visits": pick[96:111],
             "gap_city": pick[111:351]}  # 10 %: a level of its own, not a 20-customer outlier
    cells["income"][facts["empty_income"]] = ""
    cells["income"][facts["nan_income"]] = "NaN"
    cells["age"][facts["nan_age"]] = "nan"
    cells["age"][facts["above_age"]] = "500"
    cells["income"][facts["huge_income"]] = "1e308"
    cells["visits"][facts["gap_visits"]] = ""
    city = city.astype(object)
    city[facts["gap_city"]] = ""
    frame = pd.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)],
                          "unit": [f"u{i % UNITS}" for i in range(n)], **cells, "city": city})
    return frame, facts


def write_messy(folder: Path, n: int = 2400, seed: int = 0) -> tuple[Path, Path, pd.DataFrame, dict]:
    """The table as a `;`-separated Latin-1 CSV, and the schema that cleans it."""
    frame, facts = messy_table(n, seed)
    data, schema = folder / "crm-export.csv", folder / "schema.toml"
    data.write_bytes(frame.to_csv(index=False, sep=";").encode("latin-1"))
    schema.write_text(SCHEMA_TOML, encoding="utf-8")
    return data, schema, frame, facts


def cleaned(frame: pd.DataFrame, facts: dict) -> tuple[np.ndarray, dict]:
    """The pooled table cleaned by hand as the schema says: rows with a gap in visits
    dropped, values clipped to the bounds, gaps filled with the median of the values
    present (after clipping), the city one-hot with its "missing" level. Returns the
    encoded matrix (before scaling) and the hand counts."""
    keep = np.ones(len(frame), dtype=bool)
    keep[facts["gap_visits"]] = False
    num = frame[["age", "income", "visits"]].replace({"": "nan"}).astype(float).to_numpy()
    hand = {"dropped": int((~keep).sum()),
            "imputed_age": int(keep[facts["nan_age"]].sum()),
            "imputed_income": int(keep[facts["empty_income"]].sum() + keep[facts["nan_income"]].sum()),
            "clipped_age": int(keep[facts["above_age"]].sum()),
            "clipped_income": int(keep[facts["huge_income"]].sum()),
            "imputed_city": int(keep[facts["gap_city"]].sum())}
    num = np.clip(num[keep], [18, 0, 0], [100, 200000, 60])
    medians = [np.quantile(c[~np.isnan(c)], 0.5, method="inverted_cdf") for c in num.T]
    num = np.where(np.isnan(num), medians, num)
    hand["medians"] = medians
    city = frame["city"].to_numpy()[keep]
    levels = ["Málaga", "Córdoba", "Bilbao", "missing"]
    onehot = np.stack([(np.where(city == "", "missing", city) == v).astype(float) for v in levels], axis=1)
    return np.hstack([num, onehot]), hand


def cost_ratio(model, X: np.ndarray) -> float:
    """k-means cost of the model's centroids on the hand-cleaned table `X` (standardised
    by its own pooled mean and std), over scikit-learn's KMeans(n_init=10) on it."""
    from sklearn.cluster import KMeans

    Xs = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    C = np.asarray(model.centroids)
    ours = ((Xs[:, None, :] - C[None]) ** 2).sum(-1).min(1).sum()
    return float(ours / KMeans(model.k, n_init=10, random_state=0).fit(Xs).inertia_)
