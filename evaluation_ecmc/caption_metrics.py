"""Caption metrics of the paper (Tables 1-2): BLEU-1/2/4, METEOR, ROUGE-L, CIDEr-D and F_BERT, for
the emotion part, the cognition part and the whole caption.

    from evaluation_ecmc.caption_metrics import compute_caption_metrics
    scores = compute_caption_metrics(predictions, references, language="en")
    scores["emotion"]["CIDEr"], scores["cognition"]["F_BERT"], scores["caption"]["BLEU-4"]

- BLEU, METEOR, ROUGE-L and CIDEr are the COCO caption evaluation code's own scorers
  (`pycocoevalcap`: corpus BLEU with the "closest" reference length, METEOR 1.5 `-l en -norm`,
  ROUGE-L with beta 1.2, CIDEr-D with sigma 6, clipping and the x10 factor), run on text tokenised by
  `caption_tokenization` (PTB for English, characters for Chinese). METEOR and PTB need Java. For
  Chinese, METEOR's stem/synonym/paraphrase resources are English, so only exact character matches
  count there. CIDEr-D is a corpus metric (its IDF comes from the references of all samples): a
  single sample always scores 0, and scores are comparable only across equal reference sets.
  The paper's Tables 1-2 print CIDEr equal to BLEU-4 in every row (a reporting slip); this reports
  true CIDEr-D.
- F_BERT is BERTScore F1 (`bertscore_offline`): offline default MiniLM-L6, all 6 layers, unrescaled
  unless `rescale_with_baseline=True` (which uses a real baseline file or raises).
- Parts: `split_caption` (modeling_ecmc.prompts_ecmc) splits "Emotion:\\n...\\n\\nCognition:\\n...";
  "caption" is the two parts joined by a space without the "Emotion:"/"Cognition:" headers (the
  format words would otherwise earn free n-gram matches). A missing part is the empty string.
- Values are on the scorers' own scale (0-1; CIDEr-D 0-10); `report.py` prints them x100 like the paper.
- Empty and one-word captions are scored (the scorers define them: e.g. BLEU ~0, ROUGE-L of two empty
  texts 1.0, BERTScore of an empty candidate raw 0); when no reference of a part has any token,
  CIDEr-D (which then crashes in pycocoevalcap) is 0.
- PTB quirk kept for parity with the COCO code: parentheses become the tokens "-lrb-" / "-rrb-"
  (its punctuation list only holds the upper-case forms).
"""

import threading

from modeling_ecmc.vocabulary_ecmc import split_caption

from .caption_tokenization import per_row_languages, require_java, tokenize_captions

METRICS = ("BLEU-1", "BLEU-2", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "F_BERT")
PARTS = ("emotion", "cognition", "caption")
_METEOR = {"scorer": None}
_METEOR_LOCK = threading.Lock()


def caption_parts(caption: str) -> dict:
    """{"emotion", "cognition", "caption"} texts of one caption (see module doc)."""
    parts = split_caption(caption or "")
    joined = " ".join(p for p in (parts["emotion"], parts["cognition"]) if p)
    return {"emotion": parts["emotion"], "cognition": parts["cognition"], "caption": joined}


def get_meteor():
    """One shared pycocoevalcap METEOR process (its start loads the paraphrase table: ~10 s)."""
    with _METEOR_LOCK:
        scorer = _METEOR["scorer"]
        if scorer is None or scorer.meteor_p.poll() is not None:
            require_java("METEOR")
            from pycocoevalcap.meteor.meteor import Meteor

            scorer = _METEOR["scorer"] = Meteor()
        return scorer


def coco_scores(predictions: list[str], references: list[list[str]], metrics=METRICS) -> dict:
    """pycocoevalcap scores on already tokenised texts: {metric: (corpus score, per-sample scores)}."""
    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [pred] for i, pred in enumerate(predictions)}
    out = {}
    if any(m.startswith("BLEU") for m in metrics):
        from pycocoevalcap.bleu.bleu import Bleu

        score, per = Bleu(4).compute_score(gts, res, verbose=0)
        for n in (1, 2, 3, 4):
            out[f"BLEU-{n}"] = (float(score[n - 1]), [float(x) for x in per[n - 1]])
    if "METEOR" in metrics:
        # "|||" separates fields in METEOR's stdin protocol (pycocoevalcap strips it only from hypotheses)
        meteor_gts = {i: [r.replace("|||", "") for r in refs] for i, refs in gts.items()}
        score, per = get_meteor().compute_score(meteor_gts, res)
        out["METEOR"] = (float(score), [float(x) for x in per])
    if "ROUGE-L" in metrics:
        from pycocoevalcap.rouge.rouge import Rouge

        score, per = Rouge().compute_score(gts, res)
        out["ROUGE-L"] = (float(score), [float(x) for x in per])
    if "CIDEr" in metrics:
        from pycocoevalcap.cider.cider import Cider

        if any(r.split() for refs in references for r in refs):
            score, per = Cider().compute_score(gts, res)
            out["CIDEr"] = (float(score), [float(x) for x in per])
        else:  # no reference n-gram at all: pycocoevalcap crashes (empty document frequency); nothing can match
            out["CIDEr"] = (0.0, [0.0] * len(predictions))
    return {m: v for m, v in out.items() if m in metrics}


def _reference_lists(references, n: int) -> list[list[str]]:
    if len(references) != n:
        raise ValueError(f"{n} predictions but {len(references)} references")
    out = []
    for i, ref in enumerate(references):
        refs = [ref] if isinstance(ref, str) else list(ref)
        if not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"reference {i} must be a string or a non-empty list of strings")
        out.append(refs)
    return out


def compute_caption_metrics(predictions, references, language: str = "en", parts=PARTS, metrics=METRICS,
                            bertscore_model=None, bertscore_num_layers: int | None = None,
                            rescale_with_baseline: bool = False, bertscore_baseline_path=None,
                            bertscore_batch_size: int = 64, device: str | None = None,
                            return_per_sample: bool = False) -> dict:
    """Score captions against reference captions.

    predictions: list of captions (full "Emotion:/Cognition:" captions, or free text).
    language: one language for every caption, or a list of one per prediction (each caption and its
    references are tokenised, and BERTScore rescaled, in that row's language).
    references: one reference caption per prediction, or a list of references per prediction.
    Returns {part: {metric: value}} for each part, plus "num_samples" and "settings" (tokeniser,
    BERTScore model, layers, rescaled flag and baseline file), and with `return_per_sample`,
    "per_sample": {part: {metric: [values]}}.
    """
    unknown = [p for p in parts if p not in PARTS] + [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown parts/metrics {unknown}; parts are {PARTS}, metrics {METRICS}")
    predictions = list(predictions)
    if not predictions:
        raise ValueError("no predictions to score")
    for i, p in enumerate(predictions):
        if not isinstance(p, str):
            raise ValueError(f"prediction {i} is a {type(p).__name__}, not a string")
    references = _reference_lists(list(references), len(predictions))
    languages = per_row_languages(language, len(predictions))
    groups = {lang: [i for i, x in enumerate(languages) if x == lang] for lang in dict.fromkeys(languages)}
    pred_parts = [caption_parts(p) for p in predictions]
    ref_parts = [[caption_parts(r) for r in refs] for refs in references]

    result, per_sample = {}, {}
    tokenizers = {"en": "ptb (stanford-corenlp 3.4.1)", "zh": "cjk-characters"}
    settings = {"language": languages[0] if len(groups) == 1 else sorted(groups),
                "tokenizer": tokenizers[languages[0]] if len(groups) == 1 else {g: tokenizers[g] for g in sorted(groups)},
                "scale": "0-1 (CIDEr-D 0-10), as returned by pycocoevalcap/bert-score"}
    coco_metrics = [m for m in metrics if m != "F_BERT"]
    texts = {part: ([pp[part] for pp in pred_parts], [[rp[part] for rp in rps] for rps in ref_parts]) for part in parts}
    tokenised = {}
    if coco_metrics:  # one tokeniser run (one Java start) for every text of every part
        flat = [t for preds, refs in texts.values() for t in preds + [r for rs in refs for r in rs]]
        flat_languages = [lang for preds, refs in texts.values()
                          for lang in languages + [languages[i] for i, rs in enumerate(refs) for _ in rs]]
        it = iter(tokenize_captions(flat, flat_languages))
        for part, (preds, refs) in texts.items():
            tokenised[part] = ([next(it) for _ in preds], [[next(it) for _ in rs] for rs in refs])
    for part in parts:
        preds, refs = texts[part]
        scores = {}
        if coco_metrics:
            scores.update(coco_scores(*tokenised[part], coco_metrics))
        if "F_BERT" in metrics:
            from .bertscore_offline import bertscore

            per_language = {lang: bertscore([preds[i] for i in rows], [refs[i] for i in rows], model_type=bertscore_model,
                                            num_layers=bertscore_num_layers, language=lang,
                                            rescale_with_baseline=rescale_with_baseline,
                                            baseline_path=bertscore_baseline_path, batch_size=bertscore_batch_size,
                                            device=device)
                            for lang, rows in groups.items()}
            bs = next(iter(per_language.values()))
            if len(groups) == 1:
                scores["F_BERT"] = (bs["F1"], bs["per_sample_F1"])
            else:  # each language's rows scored (and rescaled) alone, then the mean over every row
                per = [0.0] * len(preds)
                for lang, rows in groups.items():
                    for i, f in zip(rows, per_language[lang]["per_sample_F1"]):
                        per[i] = f
                scores["F_BERT"] = (sum(per) / len(per), per)
            settings.update(bertscore_model=bs["model"], bertscore_num_layers=bs["num_layers"],
                            bertscore_rescaled=bs["rescaled"],
                            bertscore_baseline=bs["baseline"] if len(groups) == 1 else
                            {lang: r["baseline"] for lang, r in sorted(per_language.items())})
        result[part] = {m: scores[m][0] for m in metrics}
        per_sample[part] = {m: scores[m][1] for m in metrics}
    result["num_samples"] = len(predictions)
    result["settings"] = settings
    if return_per_sample:
        result["per_sample"] = per_sample
    return result


def flatten_metrics(result: dict, sep: str = "/") -> dict:
    """{"emotion/BLEU-1": ..., ...} from `compute_caption_metrics` output (numbers only)."""
    return {f"{part}{sep}{m}": v for part in PARTS if part in result for m, v in result[part].items()}
