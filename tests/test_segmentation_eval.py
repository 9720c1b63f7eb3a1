"""The scoring of whole-interview segmentation (evaluation_ecmc/segmentation_eval.py): word error rate,
boundary matching and the words' normalisation, on hand-made cases with known answers."""

from evaluation_ecmc.segmentation_eval import boundary_matches, normalise_words, word_errors


def test_word_errors_count_substitutions_deletions_and_insertions():
    ref = "i went to the shop this morning".split()
    assert word_errors(ref, ref) == 0
    assert word_errors(ref, "i went to a shop this morning".split()) == 1  # one substitution
    assert word_errors(ref, "i went to shop this morning".split()) == 1  # one deletion
    assert word_errors(ref, "i went to the the shop this morning today".split()) == 2  # two insertions
    assert word_errors(ref, []) == len(ref) and word_errors([], ["x"]) == 1


def test_normalisation_drops_case_punctuation_and_fillers_and_expands_contractions():
    assert normalise_words("I, um, I'm scared... uh, something BAD will happen.") == \
        "i i am scared something bad will happen".split()
    assert normalise_words("I cannot remember.") == normalise_words("i can't remember")


def test_boundaries_match_one_to_one_within_the_tolerance():
    assert boundary_matches([1.0, 5.2], [1.3, 5.0]) == 2
    assert boundary_matches([1.0, 1.1], [1.05]) == 1  # one true boundary is found once
    assert boundary_matches([1.0], [1.6]) == 0  # 0.6 s off: missed
    assert boundary_matches([2.0, 2.4], [2.35, 1.9]) == 2  # closest pairs first
