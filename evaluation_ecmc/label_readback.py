"""Read emotion valence and the four cognitive deficits back from caption text, and score them.

Used to check that generated captions carry the labels (DESIGN §5: "emotion and cognition labels read
back from generated captions are far above chance") and to draw Fig. 4 from predicted captions.

Rules (English; Chinese has a smaller rule set, see `_ZH`):
- Emotion (read from the emotion part; the whole caption if that part is empty): an explicit
  statement wins: "<negative|neutral|positive> emotion/mood/affect", "the emotion appears <label>"
  (the wording of ECMC-Synth captions). Without one, cue words vote (negative: sad, low mood, downcast,
  hopeless, worried, tense, ...; neutral: neutral, calm, composed, steady, matter-of-fact, ...;
  positive: positive, cheerful, happy, smile, lively, warm, ...); a negated cue ("not happy") votes
  negative for a positive cue and neutral for a negative cue. A tie or no cue at all gives None
  (unreadable): never guessed, counted wrong in the accuracy and reported.
- Cognition (read from the cognition part; the whole caption if that part is empty), per sentence:
  a sentence naming a domain ("orientation", "attention", "memory", "language") together with a
  deficit word (deficit, disorder, impairment, problem, difficulty, ...) states that domain; cue words
  (disoriented, distracted, loses track, forgets, cannot recall, word-finding, fragmented, ...) count
  only in sentences that name no domain (in ECMC-Synth the evidence of one deficit, e.g. "forgets the
  question" for attention, would otherwise be read as another). Negation: "no", "without", "absence
  of", "free of", "denies", "not show/appear/seem ...", "neither/nor" negate the rest of the clause;
  "intact", "normal", "unimpaired", "preserved", "fine", "absent", "ruled out" negate their clause
  (clauses end at "but", "however", "although", ...); a negated sentence about
  cognition in general ("No obvious cognitive impairment", "Cognition appears intact") states that no
  domain is impaired. A domain is read as 1 when some non-negated statement names it. The caption is
  "readable" for cognition when it states something about some domain or about cognition in general.
"""

import re

import numpy as np

from modeling_ecmc.vocabulary_ecmc import COGNITION_DOMAINS, COGNITION_LABELS, EMOTION_LABELS, split_caption

from .caption_tokenization import per_row_languages

_VALENCE = {"negative": -1, "neutral": 0, "positive": 1}

# ---- English ---------------------------------------------------------------------------------------
_EMO_EXPLICIT = [
    re.compile(r"\b(negative|neutral|positive)\s+(?:emotions?|mood|affect|feelings?|emotional\s+state|valence|tone)\b"),
    re.compile(r"\b(?:emotion|mood|affect|emotional\s+state|valence)\s+(?:appears|seems|is|was|looks|remains|"
               r"comes\s+across\s+as)\s+(?:\w+\s+)?(negative|neutral|positive)\b"),
]
_EMO_CUES = {
    -1: r"negative|sad(?:ness|ly)?|unhappy|unhappiness|downcast|depressed|depressive|low\s+mood|low\s+spirits|"
        r"hopeless(?:ness)?|helpless(?:ness)?|worr(?:y|ied|ies|ying)|anxious|anxiety|tense|tension|fear(?:ful|s)?|"
        r"afraid|scared|cry(?:ing)?|cries|tearful|frown(?:s|ing)?|gloomy|miserable|lonely|loneliness|"
        r"distress(?:ed)?|irritab(?:le|ility)|angry|upset|despair|drooping|flat",
    0: r"neutral|calm(?:ly)?|composed|steady|even(?:\s+pace|ly)|matter[-\s]of[-\s]fact(?:ly)?|plain(?:ly)?|"
       r"ordinary|impassive|unremarkable|little\s+facial\s+expression",
    1: r"positive|cheerful(?:ly)?|happ(?:y|ily|iness)|smil(?:e|es|ed|ing)|bright|lively|warm(?:ly)?|joy(?:ful)?|"
       r"pleased|content(?:ed)?|enjoy(?:s|ed|ing)?|upbeat|animated|laugh(?:s|ed|ing)?|optimistic|delighted|"
       r"wonderful|lovely",
}
_EMO_CUE_RE = {k: re.compile(rf"\b(?:{v})\b") for k, v in _EMO_CUES.items()}
_EMO_NEGATOR = re.compile(r"(?:\b(?:not|no|never|hardly|without)|n't)\s+(?:\w+\s+){0,1}$")

_DOMAIN_WORD = {
    "orientation": r"orientation|disorient\w*",
    "attention": r"attention(?:al)?|concentration",
    "memory": r"memory|memories",
    "language": r"language|linguistic|speech\s+production",
}
_DEFICIT_WORD = re.compile(
    r"\b(?:deficits?|disorders?|disorientation|disoriented|impair\w*|problems?|difficult\w*|trouble|poor|reduced|"
    r"declin\w*|issues?|loss|lapses?|disturb\w*|dysfunction\w*|weak\w*|signs?|possible|possibly|suggest\w*|"
    r"indicat\w*|deficien\w*|abnormal\w*|symptoms?)\b")
_CUES = {
    "orientation": r"disorient\w*|(?:unsure|confused|not\s+sure|does\s+not\s+know|doesn't\s+know|uncertain)\s+"
                   r"(?:of|about|what|where|which|when)\s+(?:\w+\s+){0,2}(?:day|date|year|month|season|time|place|"
                   r"where|they\s+are|he\s+is|she\s+is)|looks?\s+around\s+the\s+room\s+as\s+if\s+lost",
    "attention": r"distract\w*|inattent\w*|loses?\s+(?:track|focus)|losing\s+(?:track|focus)|drift(?:s|ed|ing)?\s+off|"
                 r"(?:question|it)\s+(?:to\s+be\s+)?repeated|(?:cannot|can't|unable\s+to|trouble|difficulty)\s+"
                 r"(?:\w+\s+)?(?:concentrat\w*|focus\w*)|zon(?:es|ed|ing)\s+out",
    "memory": r"forget\w*|forgot\w*|amnesi\w*|(?:cannot|can't|could\s+not|couldn't|does\s+not|doesn't|unable\s+to|"
              r"struggles?\s+to|trouble|difficulty)\s+(?:\w+\s+)?(?:remember\w*|recall\w*)|memory\s+lapses?",
    "language": r"word[-\s]finding|fragment\w*|broken\s+sentences|incoheren\w*|halting\w*|aphasi\w*|"
                r"slurred|(?:pauses?|gaps?)\s+(?:long\s+)?between\s+words|fillers|stammer\w*|stutter\w*",
}
_DOMAIN_WORD_RE = {d: re.compile(rf"\b(?:{p})\b") for d, p in _DOMAIN_WORD.items()}
_CUE_RE = {d: re.compile(rf"\b(?:{p})") for d, p in _CUES.items()}
_GENERAL_COGNITION = re.compile(r"\bcogniti\w*|\bimpairments?\b|\bdeficits?\b")
_PRE_NEGATION = re.compile(
    r"(?:\b(?:no|without|absence\s+of|free\s+of|denies|denied|neither|nor)|"
    r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+){0,2}?(?:show\w*|have|has|display\w*|exhibit\w*|appear\w*|seem\w*|"
    r"indicat\w*|suggest\w*|present\w*|impaired|affected|any))\b")
_POST_NEGATION = re.compile(r"\b(?:intact|normal|unimpaired|unaffected|preserved|fine|adequate|absent|ruled\s+out|"
                            r"within\s+normal\s+limits)\b")
_CLAUSE_BREAK = re.compile(r",?\s*\b(?:but|however|although|though|whereas|while|yet|except)\b")
_SENTENCE_SPLIT = re.compile(r"[.;!?\n]+")

# ---- Chinese ---------------------------------------------------------------------------------------
_ZH = {
    "emo_explicit": re.compile(r"(负性|消极|负面|中性|积极|正性|正面)(?:的)?情绪|情绪(?:表现为|显得|呈|为|是|偏|较为)?(负性|消极|负面|中性|积极|正性|正面)"),
    "emo_map": {"负性": -1, "消极": -1, "负面": -1, "中性": 0, "积极": 1, "正性": 1, "正面": 1},
    "emo_cues": {-1: re.compile(r"悲伤|难过|低落|抑郁|沮丧|焦虑|担心|紧张|害怕|哭|绝望|痛苦|烦躁|忧虑|愁"),
                 0: re.compile(r"平静|中性|平淡|平稳|镇定"),
                 1: re.compile(r"开心|高兴|愉快|快乐|积极|微笑|笑|乐观|愉悦")},
    "emo_negator": re.compile(r"(?:不|没有|没|无)$"),
    "domain": {"orientation": re.compile(r"定向"), "attention": re.compile(r"注意"),
               "memory": re.compile(r"记忆"), "language": re.compile(r"语言|言语")},
    "deficit": re.compile(r"障碍|缺陷|问题|受损|损害|困难|减退|下降|异常"),
    "cues": {"orientation": re.compile(r"迷失方向|不知道(?:今天|现在|日期|时间|地点|自己在哪|在哪)|分不清"),
             "attention": re.compile(r"分心|走神|注意力不集中|心不在焉"),
             "memory": re.compile(r"健忘|忘记|忘了|记不住|记不清|想不起"),
             "language": re.compile(r"找词困难|表达困难|言语不连贯|语句破碎|语无伦次|断断续续")},
    "general": re.compile(r"认知|障碍|缺陷"),
    "negation": re.compile(r"未见|未发现|不存在|没有|(?<!无)无(?!法)|正常|完好|良好"),
    "split": re.compile(r"[。；！？!?;\n]+"),
}


def read_emotion(text: str, language: str = "en") -> int | None:
    """Valence -1/0/1 stated by the text, or None when it states none (or contradicts itself evenly)."""
    text = (text or "").lower()
    if language == "zh":
        found = [(m.start(), _ZH["emo_map"][m.group(1) or m.group(2)]) for m in _ZH["emo_explicit"].finditer(text)]
        cue_res, negator = _ZH["emo_cues"], _ZH["emo_negator"]
    else:
        found = sorted((m.start(), _VALENCE[m.group(1)]) for rx in _EMO_EXPLICIT for m in rx.finditer(text))
        cue_res, negator = _EMO_CUE_RE, _EMO_NEGATOR
    if found:
        labels = [v for _, v in found]
        counts = {v: labels.count(v) for v in set(labels)}
        best = max(counts.values())
        tied = [v for v in counts if counts[v] == best]
        return tied[0] if len(tied) == 1 else max(found, key=lambda x: x[0] if x[1] in tied else -1)[1]
    votes = {-1: 0, 0: 0, 1: 0}
    for valence, rx in cue_res.items():
        for m in rx.finditer(text):
            negated = negator.search(text[max(0, m.start() - 16): m.start()]) is not None
            votes[(-1 if valence == 1 else 0) if negated and valence != 0 else valence] += 1
    best = max(votes.values())
    winners = [v for v, c in votes.items() if c == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def _negated_spans(sentence: str) -> list[tuple[int, int]]:
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(sentence)] + [len(sentence)]
    spans = []
    for m in _PRE_NEGATION.finditer(sentence):
        spans.append((m.start(), min(b for b in breaks if b >= m.end())))
    for m in _POST_NEGATION.finditer(sentence):
        start = max([0] + [b for b in breaks if b <= m.start()])
        spans.append((start, min(b for b in breaks if b >= m.end())))
    return spans


def _read_cognition_en(text: str) -> tuple[list[int], bool]:
    positive, readable = set(), False
    for sentence in _SENTENCE_SPLIT.split(text.lower()):
        if not sentence.strip():
            continue
        negated = _negated_spans(sentence)
        inside = lambda pos: any(a <= pos < b for a, b in negated)  # noqa: E731
        named = {d: [m.start() for m in rx.finditer(sentence)] for d, rx in _DOMAIN_WORD_RE.items()}
        named = {d: pos for d, pos in named.items() if pos}
        has_deficit_word = _DEFICIT_WORD.search(sentence) is not None
        if named and (has_deficit_word or negated):
            readable = True
            for d, positions in named.items():
                if any(not inside(p) for p in positions) and has_deficit_word:
                    positive.add(d)
            continue
        cue_hit = False
        for d, rx in _CUE_RE.items():
            positions = [m.start() for m in rx.finditer(sentence)]
            if positions:
                cue_hit = readable = True
                if any(not inside(p) for p in positions):
                    positive.add(d)
        if not cue_hit and negated and _GENERAL_COGNITION.search(sentence):
            readable = True
    return [int(d in positive) for d in COGNITION_DOMAINS], readable


def _read_cognition_zh(text: str) -> tuple[list[int], bool]:
    positive, readable = set(), False
    for sentence in _ZH["split"].split(text):
        if not sentence.strip():
            continue
        negated = _ZH["negation"].search(sentence) is not None
        named = [d for d, rx in _ZH["domain"].items() if rx.search(sentence)]
        if named and (_ZH["deficit"].search(sentence) or negated):
            readable = True
            if not negated:
                positive.update(named)
            continue
        cues = [d for d, rx in _ZH["cues"].items() if rx.search(sentence)]
        if cues:
            readable = True
            positive.update(cues)
        elif negated and _ZH["general"].search(sentence):
            readable = True
    return [int(d in positive) for d in COGNITION_DOMAINS], readable


def read_cognition(text: str, language: str = "en") -> tuple[list[int], bool]:
    """([orientation, attention, memory, language] 0/1, readable) stated by the text."""
    return (_read_cognition_zh if language == "zh" else _read_cognition_en)(text or "")


def read_labels(caption: str, language: str = "en") -> dict:
    """{"emotion": -1/0/1 or None, "cognition": [4 x 0/1], "cognition_readable": bool} of one caption."""
    parts = split_caption(caption or "")
    emotion = read_emotion(parts["emotion"] or caption, language)
    cognition, readable = read_cognition(parts["cognition"] or caption, language)
    return {"emotion": emotion, "cognition": cognition, "cognition_readable": readable}


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(np.sum(pred & gold))
    denom = float(np.sum(pred) + np.sum(gold))
    return 2 * tp / denom if denom else 0.0


def chance_levels(emotion_labels, cognition_labels, train_emotion_labels=None, train_cognition_labels=None) -> dict:
    """Accuracy / F1 of two label-blind predictors, to report beside read-back scores:
    - majority: always the most frequent class of the training labels (of the evaluated labels when
      none are given, which is an optimistic upper bound for this predictor);
    - uniform: a uniformly random class (emotion: each of 3 with 1/3; each deficit: 0/1 with 1/2), as
      expected values: accuracy 1/K; F1 of a class with frequency p: 2 p (1/K) / (p + 1/K)."""
    emo = np.asarray(emotion_labels, dtype=int)
    cog = np.asarray(cognition_labels, dtype=int).reshape(len(emo), len(COGNITION_DOMAINS))
    train_emo = np.asarray(train_emotion_labels if train_emotion_labels is not None else emo, dtype=int)
    train_cog = np.asarray(train_cognition_labels if train_cognition_labels is not None else cog,
                           dtype=int).reshape(-1, len(COGNITION_DOMAINS))
    classes = sorted(EMOTION_LABELS)
    majority = max(classes, key=lambda c: (np.sum(train_emo == c), -abs(c)))
    freq = {c: float(np.mean(emo == c)) for c in classes}
    emo_f1_majority = {EMOTION_LABELS[c]: _f1(np.full(len(emo), c) == c, emo == c) if c == majority else 0.0
                       for c in classes}
    emo_f1_uniform = {EMOTION_LABELS[c]: (2 * freq[c] / 3 / (freq[c] + 1 / 3)) for c in classes}
    out = {"emotion": {
        "majority_class": EMOTION_LABELS[majority],
        "majority_accuracy": float(np.mean(emo == majority)),
        "majority_macro_f1": float(np.mean(list(emo_f1_majority.values()))),
        "uniform_accuracy": 1 / 3,
        "uniform_macro_f1": float(np.mean(list(emo_f1_uniform.values()))),
    }, "cognition": {}}
    for j, name in enumerate(COGNITION_LABELS):
        maj = int(np.mean(train_cog[:, j]) > 0.5)
        p = float(np.mean(cog[:, j]))
        out["cognition"][name] = {
            "majority_class": maj,
            "majority_accuracy": float(np.mean(cog[:, j] == maj)),
            "majority_f1": _f1(np.full(len(cog), maj, dtype=bool), cog[:, j] == 1),
            "uniform_accuracy": 0.5,
            "uniform_f1": (p / (p + 0.5)) if p > 0 else 0.0,
        }
    maj_vec = (np.mean(train_cog, axis=0) > 0.5).astype(int)
    out["cognition_exact_match"] = {"majority": float(np.mean(np.all(cog == maj_vec, axis=1))),
                                    "uniform": 0.5 ** len(COGNITION_DOMAINS)}
    return out


def readback_scores(captions, emotion_labels, cognition_labels, language: str = "en",
                    train_emotion_labels=None, train_cognition_labels=None) -> dict:
    """Read labels back from `captions` and score them against the true labels.

    Returns {"n", "emotion": {accuracy, macro_f1, per_class_f1, unreadable}, "cognition": {per-label
    accuracy / precision / recall / F1, macro_f1, exact_match, unreadable}, "chance": chance_levels(...)}.
    Unreadable emotions count as wrong (never guessed). `language`: one language for every caption,
    or a list of one per caption (each is read in its own)."""
    captions = list(captions)
    emo = np.asarray(emotion_labels, dtype=int)
    cog = np.asarray(cognition_labels, dtype=int).reshape(len(emo), len(COGNITION_DOMAINS))
    if len(captions) != len(emo):
        raise ValueError(f"{len(captions)} captions but {len(emo)} labels")
    read = [read_labels(c, lang) for c, lang in zip(captions, per_row_languages(language, len(captions)))]
    pred_emo = np.array([r["emotion"] if r["emotion"] is not None else 99 for r in read], dtype=int)
    pred_cog = np.array([r["cognition"] for r in read], dtype=int).reshape(len(read), len(COGNITION_DOMAINS))
    per_class = {EMOTION_LABELS[c]: _f1(pred_emo == c, emo == c) for c in sorted(EMOTION_LABELS)}
    cognition = {}
    for j, name in enumerate(COGNITION_LABELS):
        p, g = pred_cog[:, j] == 1, cog[:, j] == 1
        tp = float(np.sum(p & g))
        cognition[name] = {"accuracy": float(np.mean(p == g)),
                           "precision": tp / float(np.sum(p)) if np.sum(p) else 0.0,
                           "recall": tp / float(np.sum(g)) if np.sum(g) else 0.0,
                           "f1": _f1(p, g), "support": int(np.sum(g))}
    return {
        "n": len(captions),
        "emotion": {"accuracy": float(np.mean(pred_emo == emo)) if len(emo) else float("nan"),
                    "macro_f1": float(np.mean(list(per_class.values()))),
                    "per_class_f1": per_class,
                    "unreadable": int(np.sum(pred_emo == 99))},
        "cognition": {**cognition,
                      "macro_f1": float(np.mean([cognition[n]["f1"] for n in COGNITION_LABELS])),
                      "exact_match": float(np.mean(np.all(pred_cog == cog, axis=1))) if len(cog) else float("nan"),
                      "unreadable": int(sum(not r["cognition_readable"] for r in read))},
        "chance": chance_levels(emo, cog, train_emotion_labels, train_cognition_labels),
    }
