"""Per-channel read-back: ECMC-Synth's own reference captions read back as exactly what the generator
put into each channel (cues), and invented or contradicting claims in a caption are counted wrong."""

import pytest

from evaluation_ecmc.channel_readback import ROW_NAMES, channel_readback, channel_table_markdown, read_channels
from modeling_ecmc.vocabulary_ecmc import format_caption
from processing_ecmc.synth import assign_subjects, plan_subject


@pytest.fixture(scope="module")
def planned():
    """(reference captions, cues) of the demo preset's 540 utterances: the generator's plan, no media."""
    captions, cues = [], []
    for subject in assign_subjects(90, 0):
        plan = plan_subject(0, int(subject["subject_id"][1:]), subject["depression"], subject["anxiety"], 6)
        for u in plan["utterances"]:
            captions.append(format_caption(u["emotion_caption"], u["cognition_caption"]))
            cues.append(u["cues"])
    return captions, cues


def test_references_read_back_as_the_cues(planned):
    captions, cues = planned
    result = channel_readback(captions, cues, captions)
    assert list(result) == list(ROW_NAMES.values())
    for name in ("face valence", "voice valence", "words valence", "words topic"):  # every caption names all three
        assert result[name]["correct"] == len(captions), name
    for name, row in result.items():
        assert row["wrong"] == 0, name
        assert row["named_as_reference"] == row["in_reference"] == row["mentioned"], name
    assert all(result[n]["mentioned"] >= 10 for n in ROW_NAMES.values())  # every evidence row is exercised
    # the "off" channel: a third of the face claims are not the label's valence, and they are still correct
    assert sum(c["face"] != c["text"] or c["face"] != c["voice"] for c in cues) > 100


CUES = {"face": 1, "voice": 0, "text": 0, "channels": {
    "orientation": {"text": False, "video": False}, "attention": {"text": True, "audio": False, "video": False},
    "memory": {"text": False, "video": False}, "language": {"text": False, "audio": False}}}
REFERENCE = ("Emotion:\nThe speaker smiles, speaks at an even pace and describes the weather matter-of-factly, "
             "suggesting neutral emotion.\n\nCognition:\nAttention deficit: the speaker forgets the question.")


@pytest.mark.parametrize("caption, row, verdict", [
    ("The speaker smiles with raised brows.", "face valence", "correct"),
    ("The speaker frowns with sad, raised inner brows.", "face valence", "wrong"),
    ("The speaker smiles but looks downcast.", "face valence", "wrong"),  # two valences for one channel
    ("Happy talk of the weather outweighs it.", "words valence", "wrong"),  # "happy talk of", not "talk of"
    ("Neutral talk of the weather.", "words valence", "correct"),
    ("Neutral talk of the weather.", "words topic", "correct"),
    ("Neutral talk of seeing the grandchildren.", "words topic", "wrong"),  # a topic that was not spoken
    ("Memory deficit: the speaker forgot an appointment.", "memory evidence: text", "wrong"),  # invented
    ("Attention deficit: the speaker forgets the question.", "attention evidence: text", "correct"),
    ("Attention deficit: the speaker admits drifting off.", "attention evidence: text", "wrong"),  # another clause
    ("Attention deficit: the speaker looks away from the interviewer.", "attention evidence: video", "wrong"),
    ("No obvious cognitive impairment.", "attention evidence: text", "not mentioned"),
])
def test_claims_are_checked_against_the_cues(caption, row, verdict):
    result = channel_readback([caption], [CUES], [REFERENCE])[row]
    assert {"correct": result["correct"], "wrong": result["wrong"], "not mentioned": result["not_mentioned"]} == {
        k: int(k == verdict) for k in ("correct", "wrong", "not mentioned")}


def test_table_and_bad_input():
    claims = read_channels(REFERENCE)
    assert claims["face"] == {1} and claims["topic"] == {"the weather"}
    assert claims[("attention", "text")] == {"forgets the question"}
    table = channel_table_markdown(channel_readback(["No obvious cognitive impairment."], [CUES], [REFERENCE]))
    assert "| face valence | 0 | 0 | 1 | – | 0 of 1 |" in table
    assert "| attention evidence: text | 0 | 0 | 1 | – | 0 of 1 |" in table
    with pytest.raises(ValueError, match="2 captions, 1 cue records"):
        channel_readback(["a", "b"], [CUES], [REFERENCE])
