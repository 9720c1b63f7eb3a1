"""Per-channel read-back: what a caption says about each channel of an ECMC-Synth utterance, checked
against what the generator put into that channel (`cues.jsonl`).

ECMC-Synth builds every label from the face, the voice and the words, and its reference captions
describe each channel with phrases from fixed banks (`processing_ecmc.synth`: FACE, VOICE, WORDS,
EVIDENCE, DEFICIT_CLAUSES). A generated caption that learned the template reuses those phrases, so
each phrase it contains is a claim about one channel that can be checked:
- face / voice valence: a FACE / VOICE phrase of valence v claims that channel showed v
  (the truth: cues `face` / `voice`, which differ from the label in the ~22 % "off" utterances);
- words valence: the WORDS phrase's wording ("talks happily about", "a plain account of", ...)
  against cues `text`;
- words topic: the gist it names ("breakfast and the paper") against the gist of the reference
  caption (the clause that was spoken);
- deficit evidence, one row per (domain, channel) of `synth.CHANNELS`: a phrase of that evidence
  claims the cue is in the input (cues `channels[domain][channel]`); naming it when the cue is absent
  is an invention. For the text channel of orientation / attention / memory, the evidence is the
  spoken clause's gist, so "correct" also requires the right clause.
A caption that mentions a channel with more than one valence (or topic) counts as wrong. Phrases are
matched longest first, so "happy talk of" is not also read as "talk of". English only.
"""

import json
import logging
import re
from pathlib import Path

from processing_ecmc.synth import CHANNELS, DEFICIT_CLAUSES, EMOTION_CLAUSES, EVIDENCE, FACE, VOICE, WORDS

logger = logging.getLogger(__name__)

EMOTION_CHANNELS = ("face", "voice", "words", "topic")
EVIDENCE_CHANNELS = tuple((domain, channel) for domain, channels in CHANNELS.items() for channel in channels)
ROW_NAMES = {"face": "face valence", "voice": "voice valence", "words": "words valence", "topic": "words topic",
             **{key: f"{key[0]} evidence: {key[1]}" for key in EVIDENCE_CHANNELS}}
TOPICS = [gist for clauses in EMOTION_CLAUSES.values() for _, gist in clauses]  # what the words can be about


def _alternation(phrases) -> str:
    return "|".join(re.escape(p.lower()) for p in sorted(set(phrases), key=len, reverse=True))


def _valence_matcher(bank: dict):
    """One regex over every phrase of a {valence: [(verb phrase, noun phrase)]} bank, and phrase -> valence."""
    valence_of = {p.lower(): v for v, pairs in bank.items() for pair in pairs for p in pair}
    return re.compile(rf"\b(?:{_alternation(valence_of)})"), valence_of


_FACE_RE, _FACE_VALENCE = _valence_matcher(FACE)
_VOICE_RE, _VOICE_VALENCE = _valence_matcher(VOICE)
# WORDS phrases wrap the topic: "talks happily about {g}" -> "talks happily about" + one of the gists
_WORDS_PREFIX = {p.split("{g}")[0].strip().lower(): v for v, pairs in WORDS.items() for pair in pairs for p in pair}
_WORDS_RE = re.compile(rf"\b({_alternation(_WORDS_PREFIX)})\s+({_alternation(TOPICS)})")
# evidence: phrase -> (domain, channel); the text channel of O/A/M is the gist of the spoken clause
_EVIDENCE_OF = {p.lower(): key for key, phrases in EVIDENCE.items() for p in phrases}
_EVIDENCE_OF.update({gist.lower(): (domain, "text") for domain, clauses in DEFICIT_CLAUSES.items()
                     for _, gist in clauses})
_EVIDENCE_RE = re.compile(rf"\b(?:{_alternation(_EVIDENCE_OF)})")
_GIST_CHANNELS = {(domain, "text") for domain in DEFICIT_CLAUSES}


def read_channels(caption: str) -> dict:
    """What `caption` claims per channel: {"face"/"voice"/"words": set of valences, "topic": set of
    gists, (domain, channel): set of evidence phrases}; a channel it does not mention is absent."""
    text = (caption or "").lower()
    claims = {}
    for name, rx, valence_of in (("face", _FACE_RE, _FACE_VALENCE), ("voice", _VOICE_RE, _VOICE_VALENCE)):
        found = {valence_of[m.group(0)] for m in rx.finditer(text)}
        if found:
            claims[name] = found
    for m in _WORDS_RE.finditer(text):
        claims.setdefault("words", set()).add(_WORDS_PREFIX[m.group(1)])
        claims.setdefault("topic", set()).add(m.group(2))
    for m in _EVIDENCE_RE.finditer(text):
        claims.setdefault(_EVIDENCE_OF[m.group(0)], set()).add(m.group(0))
    return claims


def channel_truth(cues: dict, reference: dict) -> dict:
    """The truth per channel of one utterance: cues' face / voice / text valence, the topic gist of the
    reference caption (`reference`: its `read_channels`), and per (domain, channel) whether the cue is
    in the input (with the gists the reference names for text evidence)."""
    truth = {"face": cues["face"], "voice": cues["voice"], "words": cues["text"],
             "topic": next(iter(reference["topic"])) if len(reference.get("topic", ())) == 1 else None}
    for domain, channel in EVIDENCE_CHANNELS:
        truth[(domain, channel)] = {"present": bool(cues["channels"][domain][channel]),
                                    "phrases": reference.get((domain, channel), set())}
    return truth


def _verdict(key, claim: set | None, truth) -> str:
    """"correct" / "wrong" / "not mentioned" of one channel's claim."""
    if not claim:
        return "not mentioned"
    if key in EMOTION_CHANNELS:
        return "correct" if claim == {truth[key]} else "wrong"
    if not truth[key]["present"]:
        return "wrong"  # evidence the input does not have: invented
    if key[1] == "text" and key in _GIST_CHANNELS:  # the spoken clause's gist, which the reference names
        return "correct" if claim <= {p.lower() for p in truth[key]["phrases"]} else "wrong"
    return "correct"


def channel_readback(captions, cues, references) -> dict:
    """Per channel over a split: {row name: {"correct", "wrong", "not_mentioned", "mentioned",
    "correct_of_mentioned", "in_reference", "named_as_reference"}}; `cues` are the utterances'
    cues.jsonl records and `references` their reference captions, in the order of `captions`.
    "in_reference" counts the utterances whose reference caption describes the channel (every one
    for the valence rows; evidence only of a true deficit) and "named_as_reference" those of them
    whose caption mentions it too: how often the caption says what it should."""
    captions, cues, references = list(captions), list(cues), list(references)
    if not len(captions) == len(cues) == len(references):
        raise ValueError(f"{len(captions)} captions, {len(cues)} cue records and {len(references)} references")
    counts = {key: {"correct": 0, "wrong": 0, "not_mentioned": 0, "in_reference": 0, "named_as_reference": 0}
              for key in ROW_NAMES}
    for caption, cue, reference in zip(captions, cues, references):
        claims, expected = read_channels(caption), read_channels(reference)
        truth = channel_truth(cue, expected)
        for key, row in counts.items():
            verdict = _verdict(key, claims.get(key), truth)
            row[verdict.replace(" ", "_")] += 1
            row["in_reference"] += key in expected
            row["named_as_reference"] += key in expected and key in claims
    out = {}
    for key, row in counts.items():
        mentioned = row["correct"] + row["wrong"]
        out[ROW_NAMES[key]] = {**row, "mentioned": mentioned,
                               "correct_of_mentioned": row["correct"] / mentioned if mentioned else None}
    return out


def channel_table_markdown(results: dict) -> str:
    """`channel_readback` output -> one markdown table, a row per channel."""
    lines = ["| Channel | correct | wrong | not mentioned | correct of mentioned | named where the reference names it |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        share = "–" if r["correct_of_mentioned"] is None else f"{100 * r['correct_of_mentioned']:.1f} %"
        lines.append(f"| {name} | {r['correct']} | {r['wrong']} | {r['not_mentioned']} | {share} | "
                     f"{r['named_as_reference']} of {r['in_reference']} |")
    return "\n".join(lines)


def synth_cues(data_cfg: dict, *splits) -> dict | None:
    """{utterance id: cues.jsonl record} when the data set is ECMC-Synth's and every row of `splits` has
    one, else None (the per-channel read-back and the channel probes need them)."""
    path = Path(data_cfg["synth_dir"]) / "cues.jsonl"
    if not data_cfg["synth_preset"] or not path.is_file():
        return None
    cues = {r["utterance_id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if r}
    missing = [u for rows in splits for u in rows["utterance_id"] if u not in cues]
    if missing:
        logger.warning("%s has no cues for %d of the rows (e.g. %s): no per-channel read-back", path, len(missing),
                       missing[0])
        return None
    return cues
