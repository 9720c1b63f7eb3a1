"""Label read-back (`evaluation_ecmc.label_readback`): ECMC-Synth reference captions and hand-written
wording, chance levels, and each caption read in its own language."""

import numpy as np
import pytest

from evaluation_ecmc.label_readback import chance_levels, read_cognition, read_emotion, read_labels, readback_scores
from modeling_ecmc.vocabulary_ecmc import format_caption
from synth_rows import reference_captions as _captions
from synth_rows import synth_rows  # noqa: F401  (a fixture)


def test_readback_recovers_synth_reference_labels(synth_rows):
    res = readback_scores(_captions(synth_rows), [r["emotion_label"] for r in synth_rows],
                          [r["cognition_labels"] for r in synth_rows])
    print(f"\nread-back on tiny ECMC-Synth reference captions (n={res['n']}): emotion "
          f"{res['emotion']['accuracy']:.3f}, cognition exact match {res['cognition']['exact_match']:.3f}")
    assert res["emotion"]["accuracy"] >= 0.95 and res["emotion"]["unreadable"] == 0
    assert res["cognition"]["exact_match"] >= 0.95


def test_readback_on_many_synth_captions_beats_chance():
    """Captions of 1,200 planned ECMC-Synth utterances (the planner needs no media)."""
    from processing_ecmc.synth import assign_subjects, plan_subject

    caps, emo, cog = [], [], []
    for i, s in enumerate(assign_subjects(200, 3)):
        for u in plan_subject(3, i, s["depression"], s["anxiety"], 6)["utterances"]:
            caps.append(format_caption(u["emotion_caption"], u["cognition_caption"]))
            emo.append(u["emotion_label"])
            cog.append(u["cognition_labels"])
    res = readback_scores(caps, emo, cog)
    print(f"\nread-back on 1,200 planned ECMC-Synth captions: emotion {res['emotion']['accuracy']:.4f}, "
          f"cognition exact {res['cognition']['exact_match']:.4f}, macro-F1 {res['cognition']['macro_f1']:.4f}")
    assert res["emotion"]["accuracy"] >= 0.98 and res["cognition"]["exact_match"] >= 0.98
    assert res["emotion"]["accuracy"] > res["chance"]["emotion"]["majority_accuracy"] + 0.3


@pytest.mark.parametrize("text,label", [
    ("The speaker seems sad and in a low mood.", -1), ("She looks calm and neutral.", 0),
    ("He is cheerful and smiles a lot.", 1), ("The speaker is not happy.", -1), ("He isn't happy.", -1), ("Not sad, just calm.", 0),
    ("Although the speaker smiles, a flat voice and talk of hopelessness point to negative emotion.", -1),
    ("With a smile and a bright voice, the speaker talks happily; the emotion appears positive.", 1),
    ("", None), ("The weather.", None), ("说话人情绪低落，显得悲伤。", -1), ("情绪平静。", 0), ("她很开心。", 1),
])
def test_read_emotion(text, label):
    assert read_emotion(text, "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en") == label


@pytest.mark.parametrize("text,labels,readable", [
    ("No obvious cognitive impairment: the answer is coherent and on topic.", [0, 0, 0, 0], True),
    ("No sign of memory deficit.", [0, 0, 0, 0], True),
    ("No signs of orientation, attention, memory or language problems.", [0, 0, 0, 0], True),
    ("She does not show any signs of memory impairment.", [0, 0, 0, 0], True),
    ("Cognition appears intact in this answer.", [0, 0, 0, 0], True),
    ("The speaker seems disoriented about the date.", [1, 0, 0, 0], True),
    ("The speaker is easily distracted and forgets names.", [0, 1, 1, 0], True),
    ("Word-finding difficulties and fragmented speech.", [0, 0, 0, 1], True),
    ("Memory is intact, but attention deficit: the speaker asks for the question to be repeated.", [0, 1, 0, 0], True),
    ("The speaker does not know where they are, suggesting orientation deficit.", [1, 0, 0, 0], True),
    ("Attention deficit: the speaker forgets the question.", [0, 1, 0, 0], True),  # evidence, not memory
    ("Orientation is normal; memory is impaired.", [0, 0, 1, 0], True),
    ("The speaker cannot recall the previous day.", [0, 0, 1, 0], True),
    ("He doesn't seem disoriented.", [0, 0, 0, 0], True), ("Memory deficit is absent.", [0, 0, 0, 0], True),
    ("Memory deficit was ruled out, but attention deficit is likely.", [0, 1, 0, 0], True),
    ("The speaker talks about the garden.", [0, 0, 0, 0], False),
    ("未见明显定向、注意、记忆或语言障碍。", [0, 0, 0, 0], True),
    ("记忆障碍：说话人想不起昨天做了什么。", [0, 0, 1, 0], True),
    ("说话人无法回忆昨天的事，忘记了约会。", [0, 0, 1, 0], True),
])
def test_read_cognition(text, labels, readable):
    assert read_cognition(text, "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en") == (labels, readable)


def test_read_labels_uses_the_caption_parts():
    cap = format_caption("Negative emotion: a frown.", "Possible memory deficit, as the speaker forgot an appointment.")
    assert read_labels(cap) == {"emotion": -1, "cognition": [0, 0, 1, 0], "cognition_readable": True}
    free = read_labels("The speaker smiles; no sign of cognitive impairment.")  # no headers: whole text
    assert free["emotion"] == 1 and free["cognition"] == [0, 0, 0, 0] and free["cognition_readable"]


def test_chance_levels_and_unreadable_counted_wrong():
    emo = [-1, -1, 0, 1]
    cog = [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]]
    ch = chance_levels(emo, cog)
    assert ch["emotion"]["majority_class"] == "negative" and ch["emotion"]["majority_accuracy"] == 0.5
    assert ch["emotion"]["uniform_accuracy"] == pytest.approx(1 / 3)
    # uniform F1 of a class with frequency p and K classes: 2 p / K / (p + 1 / K)
    assert ch["emotion"]["uniform_macro_f1"] == pytest.approx(np.mean([2 * p / 3 / (p + 1 / 3) for p in (.5, .25, .25)]))
    assert ch["cognition"]["memory deficit"]["uniform_f1"] == pytest.approx(0.5 / (0.5 + 0.5))
    assert ch["cognition"]["attention deficit"]["majority_accuracy"] == 0.75
    res = readback_scores(["Emotion:\nnegative emotion", "Emotion:\nthe weather", "", "Emotion:\npositive emotion"], emo,
                          [[0] * 4] * 4)
    assert res["emotion"]["accuracy"] == 0.5 and res["emotion"]["unreadable"] == 2


def test_each_caption_is_read_in_its_own_language():
    en = format_caption("Negative emotion: a downcast look.", "Memory deficit: the speaker forgot the date.")
    zh = format_caption("负性情绪：神情低落。", "记忆障碍：说话人忘记了日期。")
    emotion, cognition = [-1, -1], [[0, 0, 1, 0], [0, 0, 1, 0]]
    mixed = readback_scores([en, zh], emotion, cognition, language=["en", "zh"])
    assert mixed["emotion"]["accuracy"] == 1.0 and mixed["cognition"]["exact_match"] == 1.0
    assert readback_scores([en, zh], emotion, cognition, language="en")["cognition"]["exact_match"] == 0.5
    assert readback_scores([en], emotion[:1], cognition[:1], ["en"]) == readback_scores([en], emotion[:1], cognition[:1], "en")
    with pytest.raises(ValueError, match="2 languages for 1 rows"):
        readback_scores([en], emotion[:1], cognition[:1], ["en", "zh"])
