"""Human evaluation (`evaluation_ecmc.human_eval`): Fleiss' kappa, the blinded rating kit and Table 6."""

import csv

import pytest

from evaluation_ecmc.human_eval import aggregate_ratings, export_rating_kit, fleiss_kappa, ratings_to_counts


def test_fleiss_kappa_textbook_example():
    """Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa 0.210."""
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(ratings_to_counts([[1, 1, 1], [2, 2, 2], [3, 3, 3]])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 raters"):
        fleiss_kappa([[1, 0]])


def test_rating_kit_is_blinded_and_aggregates(tmp_path):
    items = [{"utterance_id": f"u{i}", "video_path": f"media/s{i}.mp4", "start": 1.0, "end": 3.0,
              "transcript": f"answer {i}"} for i in range(4)]
    systems = {"Dataset": [f"reference {i}" for i in range(4)], "ECMC-secret-name": [f"ours {i}" for i in range(4)]}
    kit = export_rating_kit(items, systems, tmp_path / "kit", seed=1)
    sheet = open(kit["sheet"], encoding="utf-8").read()
    assert "ECMC-secret-name" not in sheet and "Dataset" not in sheet and kit["rows"] == 8
    with open(kit["key"], newline="", encoding="utf-8") as f:
        key = {r["system"]: r["name"] for r in csv.DictReader(f)}
    assert sorted(key.values()) == ["Dataset", "ECMC-secret-name"]
    with open(kit["sheet"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    filled = []
    for rater, bump in enumerate((0, 0, 1)):
        for row in rows:
            base = 5 if key[row["system"]] == "Dataset" else 3
            row.update({"EAcc": base, "CAcc": base - bump, "Detail": 4, "Consis": "-" if base == 3 else 4, "Overall": base})
        path = tmp_path / f"rater{rater}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        filled.append(path)
    agg = aggregate_ratings(filled, kit["key"])
    assert agg["systems"]["Dataset"]["EAcc"]["mean"] == 5 and agg["systems"]["ECMC-secret-name"]["EAcc"]["mean"] == 3
    assert agg["systems"]["Dataset"]["CAcc"]["mean"] == pytest.approx((5 + 5 + 4) / 3)
    assert agg["systems"]["ECMC-secret-name"]["Consis"] is None and agg["kappa"]["EAcc"] == pytest.approx(1.0)
    from evaluation_ecmc.human_eval import table6_markdown

    md = table6_markdown(agg, order=["Dataset", "ECMC-secret-name"])
    assert "| Dataset | 5.00 | 4.67 | 4.00 | 4.00 | 5.00 |" in md and "| ECMC-secret-name | 3.00 | 2.67 | 4.00 | - |" in md
    rows[0]["EAcc"] = "6"
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match=r"bad.csv, line 2, column EAcc: '6' is not a rating 1-5"):
        aggregate_ratings([bad], kit["key"])
