"""Question-answer turns of one interview, the way the paper's data was made: timed segments ->
speaker turns -> each patient answer an utterance, the interviewer's question kept beside it ->
the paper's filter, every dropped turn reported with its reason.

    segments = read_timed_transcript("session.vtt")         # processing_ecmc.transcript_files
    kept, dropped, patient = interview_turns(segments)       # [Turn], [(Turn, reason)], the patient's label

- **Turns**: consecutive segments of one speaker less than MERGE_GAP seconds apart are one turn.
- **An answer's clip** starts ANSWER_LEAD s after the question ends (at most MAX_LATENCY s before
  the first word), so the response latency, a cue of attention, lies inside it as in ECMC-Synth and
  the paper's segments; it ends ANSWER_TAIL s after the last word (before the next speaker starts).
- **Which speaker is the patient** (unless given): the one whose turns most often come right after
  another speaker's question (a turn ending in "?" / "？"); ties go to the speaker who asks fewer
  questions, then to the one who speaks longer. A transcript with one speaker, or none named,
  cannot tell questions from answers: that is an error unless the patient is given.
- **The paper's filter** (reasons as reported): `shorter than 2 s` (`min_seconds`); `greeting`: the
  answer is only greetings, thanks or farewells; `personal information`: the question asks for an
  identifying detail (name, date of birth, address, phone, ID number, e-mail), or the answer gives one
  ("my name is ...", "I was born on ..."; this also catches a question the ASR misheard) —
  orientation questions such as "what is the date today" are kept, they test cognition. Side talk is not
  detected automatically: remove such turns from the output by hand.

Texts are never logged; only counts and reasons are.
"""

import re
from dataclasses import dataclass

from modeling_ecmc.vocabulary_ecmc import MIN_UTTERANCE_SECONDS

MERGE_GAP = 2.0  # seconds between two segments of one speaker that still make one turn (pauses inside an answer)
ANSWER_LEAD, MAX_LATENCY, ANSWER_TAIL = 0.1, 5.0, 0.2  # seconds: an answer's clip around its words

_QUESTION_END = ("?", "？")
_GREETING_WORDS = set("""hi hello hey good morning afternoon evening thank thanks you very much bye goodbye
see nice to meet too welcome ok okay pleasure great fine and 你好 您好 谢谢 再见 早上好 下午好 不客气""".split())
_PERSONAL = re.compile(
    r"\b(your (full |first |last )?name|date of birth|when were you born|birthday|your (home |current )?address|"
    r"phone number|telephone|id number|identity card|social security|e-?mail)\b"
    r"|名字|姓名|出生日期|生日|住址|地址|电话|手机号|身份证|邮箱", re.IGNORECASE)
_GIVES_PERSONAL = re.compile(r"\b(my (full |first |last )?name is|i was born on|my (home )?address is|"
                             r"my (phone|telephone|mobile) number is|my e-?mail is)\b|我叫|我的名字是|我出生于", re.IGNORECASE)


class SegmentationError(ValueError):
    """A transcript that cannot be made into question-answer turns; the message says why."""


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str | None
    transcript: str
    question: str = ""


def speaker_turns(segments) -> list[Turn]:
    """Consecutive segments of one speaker (less than MERGE_GAP s apart) joined into turns."""
    turns: list[Turn] = []
    for s in segments:
        last = turns[-1] if turns else None
        if last is not None and last.speaker == s.speaker and s.start - last.end < MERGE_GAP:
            text = " ".join(t for t in (last.transcript, s.text) if t)
            turns[-1] = Turn(last.start, max(last.end, s.end), last.speaker, text)
        else:
            turns.append(Turn(s.start, s.end, s.speaker, s.text))
    return turns


def _is_question(turn: Turn) -> bool:
    return turn.transcript.rstrip().endswith(_QUESTION_END)


def choose_patient(turns: list[Turn]) -> str:
    """The patient's speaker label by the module docstring's rule."""
    speakers = {t.speaker for t in turns}
    if None in speakers or len(speakers) < 2:
        named = sorted(s for s in speakers if s is not None)
        what = f"one speaker only ({named[0]})" if len(named) == 1 and None not in speakers else "no speaker named on every turn"
        raise SegmentationError(f"the transcript has {what}, so the interviewer's questions cannot be told from the "
                                "patient's answers: name the speakers ('Name: ...' prefixes, WebVTT <v Name> tags or "
                                "JSON 'speaker'), or give the patient's label to keep every turn")

    def score(speaker):
        answers = sum(1 for prev, t in zip(turns, turns[1:])
                      if t.speaker == speaker and prev.speaker != speaker and _is_question(prev))
        asked = sum(1 for t in turns if t.speaker == speaker and _is_question(t))
        spoken = sum(t.end - t.start for t in turns if t.speaker == speaker)
        return answers, -asked, spoken

    return max(sorted(speakers), key=score)


def drop_reason(turn: Turn, min_seconds: float = MIN_UTTERANCE_SECONDS) -> str | None:
    """Why the paper's filter drops an answer turn, or None to keep it."""
    if turn.end - turn.start < min_seconds:
        return f"shorter than {min_seconds:g} s"
    words = re.findall(r"[\w']+", turn.transcript.lower())
    if words and all(w in _GREETING_WORDS for w in words):
        return "greeting"
    if (turn.question and _PERSONAL.search(turn.question)) or _GIVES_PERSONAL.search(turn.transcript):
        return "personal information"
    return None


def interview_turns(segments, patient: str | None = None, min_seconds: float = MIN_UTTERANCE_SECONDS):
    """(kept turns, [(dropped turn, reason)], the patient's label): each of the patient's turns with
    the other speakers' words since the patient last spoke as its `question`."""
    turns = speaker_turns(segments)
    if patient is None:
        patient = choose_patient(turns)
    elif patient not in {t.speaker for t in turns}:
        named = sorted({t.speaker for t in turns if t.speaker is not None})
        raise SegmentationError(f"patient {patient!r} does not speak in the transcript; its speakers are {named}")
    kept, dropped, asked = [], [], []
    for k, turn in enumerate(turns):
        if turn.speaker != patient:
            asked.append(turn.transcript)
            continue
        start, end = turn.start, turn.end + ANSWER_TAIL
        if k > 0:  # the question's end .. the first word: the response latency
            start = max(min(turn.start, turns[k - 1].end + ANSWER_LEAD), turn.start - MAX_LATENCY)
        if k + 1 < len(turns):
            end = min(end, max(turn.end, turns[k + 1].start))
        answer = Turn(round(start, 3), round(end, 3), turn.speaker, turn.transcript, " ".join(asked))
        asked = []
        reason = drop_reason(answer, min_seconds)
        if reason:
            dropped.append((answer, reason))
        else:
            kept.append(answer)
    return kept, dropped, patient
