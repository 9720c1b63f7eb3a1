"""The score that `stage2.select_by: readback` selects checkpoints by, handed to training by the entry
points (training never imports evaluation):

    trainer = ECMCTrainer(..., readback=readback_scorer(processor, cfg))

A checkpoint is scored by the labels read back from its greedy captions of the evaluation split:
the mean of emotion accuracy and cognition exact match (`label_readback.readback_scores`). On a small
data set the validation loss barely moves with whether the captions name the right emotion, while
this does (README, "What learns in the demo"). Every row is captioned and read in its own language.
"""

from .label_readback import readback_scores
from .run_evaluation import caption_split


def readback_scorer(processor, cfg):
    """`(model, dataset) -> float` for `ECMCTrainer(readback=...)`: captions of `dataset.cached` with
    `evaluate.batch_size` and `evaluate.max_new_tokens`, scored against `dataset.labels` (emotion
    labels, cognition labels); `dataset.languages` holds each row's language (empty: the processor's)."""
    batch_size, max_new_tokens = cfg["evaluate"]["batch_size"], cfg["evaluate"]["max_new_tokens"]

    def score(model, dataset) -> float:
        languages = [lang or processor.language for lang in dataset.languages]
        captions, _, _ = caption_split(model, processor, dataset.cached, batch_size, max_new_tokens, languages,
                                       dataset.transcripts)
        scores = readback_scores(captions, *dataset.labels, language=languages)
        return (scores["emotion"]["accuracy"] + scores["cognition"]["exact_match"]) / 2

    return score
