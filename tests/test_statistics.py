"""Statistics (`evaluation_ecmc.statistics`): Fig. 4 group means, from labels or read back from
captions, each in its row's own language."""

import pytest

from modeling_ecmc.vocabulary_ecmc import format_caption


def test_group_statistics_math():
    from evaluation_ecmc.statistics import group_statistics

    stats = group_statistics(["a", "a", "b", "b", "c"], [1, 1, 0, 0, 1], [0, 0, 0, 0, 1], [-1, 0, 1, None, -1],
                             [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    g = stats["groups"]
    assert g["depression"]["n_subjects"] == 2 and g["anxiety"]["n_subjects"] == 1 and g["healthy"]["n_subjects"] == 1
    assert g["depression"]["mean"]["negative emotion"] == pytest.approx((0.5 + 1.0) / 2)
    assert g["depression"]["mean"]["attention deficit"] == pytest.approx((0.5 + 1.0) / 2)
    assert g["healthy"]["mean"]["negative emotion"] == 0.0  # the unreadable (None) utterance is left out


def test_group_statistics_read_each_row_in_its_own_language():
    from evaluation_ecmc.statistics import group_statistics_from_rows

    rows = [{"subject_id": "a", "depression": 1, "anxiety": 0, "language": "zh", "emotion_label": -1,
             "cognition_labels": [0, 0, 1, 0]},
            {"subject_id": "b", "depression": 0, "anxiety": 0, "language": "en", "emotion_label": 1,
             "cognition_labels": [0, 0, 0, 0]}]
    captions = [format_caption("负性情绪：神情低落。", "记忆障碍：说话人忘记了日期。"),
                format_caption("Positive emotion: a bright smile.", "No obvious cognitive impairment.")]
    read, labelled = group_statistics_from_rows(rows, captions)["groups"], group_statistics_from_rows(rows)["groups"]
    assert read["depression"] == labelled["depression"] and read["healthy"] == labelled["healthy"]
    assert group_statistics_from_rows(rows, captions, ["zh", "en"])["per_subject"] == \
        group_statistics_from_rows(rows, captions)["per_subject"]
    read_as_en = group_statistics_from_rows(rows, captions, "en")["groups"]["depression"]["mean"]
    assert read_as_en["memory deficit"] == 0.0  # the Chinese caption read with the English rules
