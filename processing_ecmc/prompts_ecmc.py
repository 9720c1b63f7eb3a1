"""The one source of label names, the caption format and every prompt (caption, profile, detection).

This file travels inside saved checkpoints (the processor imports it), so it imports only the
standard library.
"""

import re

# Emotion valence y_e (paper §Emotional Representation Extraction).
EMOTION_LABELS = {-1: "negative", 0: "neutral", 1: "positive"}
# Cognition y_c in {0,1}^4, in this order (paper §Cognitive Representation Extraction, MMSE).
COGNITION_LABELS = ("orientation deficit", "attention deficit", "memory deficit", "language disorder")

# Placeholders the processor puts into the decoder prompt; the model replaces their embeddings by
# the emotion / cognition query outputs (Eq. 3: [BOS] + h_e + h_c + prompt).
EMOTION_TOKEN = "<ecmc_emotion>"
COGNITION_TOKEN = "<ecmc_cognition>"

# The reference implementation's target format; metrics are computed per part.
CAPTION_TEMPLATE = "Emotion:\n{emotion}\n\nCognition:\n{cognition}"
_CAPTION_RE = re.compile(r"^\s*Emotion:\s*(?P<emotion>.*?)\s*(?:Cognition:\s*(?P<cognition>.*))?$", re.S)


def format_caption(emotion: str, cognition: str) -> str:
    return CAPTION_TEMPLATE.format(emotion=emotion.strip(), cognition=cognition.strip())


def split_caption(caption: str) -> dict:
    """Split a caption into its emotion and cognition parts; a part that is missing comes back ''."""
    match = _CAPTION_RE.match(caption)
    if match is None:  # no "Emotion:" header: the model wrote free text; treat it all as emotion
        head, sep, tail = caption.partition("Cognition:")
        return {"emotion": head.strip(), "cognition": tail.strip() if sep else ""}
    return {"emotion": (match["emotion"] or "").strip(), "cognition": (match["cognition"] or "").strip()}


PROMPTS = {
    "en": {
        "caption": (
            "Describe the speaker's emotional state and any signs of cognitive impairment "
            "(orientation, attention, memory, language).\n"
        ),
        "profile": (
            "Below are descriptions of one person's utterances in a clinical interview.\n"
            "{captions}\n"
            "Summarise them as an emotion-cognition profile: the salient negative emotions and "
            "whether there are orientation, attention, memory or language deficits, with evidence."
        ),
        "detection": (
            "You are assisting a clinician. {profile_block}Interview transcript:\n{transcript}\n"
            "Does this person show signs of {disorder}? Answer with one word: yes or no."
        ),
        "profile_block": "Emotion-cognition profile of the person:\n{profile}\n",
        # Text-only LLM baselines (Tables 1-2 comparison rows): the transcript is all they see.
        "text_baseline": (
            "Here is what a person said in a clinical interview:\n{transcript}\n"
            "Describe the speaker's emotional state (negative, neutral or positive, with the cues) and "
            "any signs of cognitive impairment (orientation, attention, memory, language). "
            "Answer in exactly this format:\nEmotion:\n<one sentence>\n\nCognition:\n<one sentence>"
        ),
    },
    "zh": {
        "caption": "请描述说话人的情绪状态以及是否存在认知障碍的迹象（定向、注意、记忆、语言）。\n",
        "profile": (
            "以下是某人在临床访谈中各段话语的描述。\n{captions}\n"
            "请总结为情绪-认知画像：突出的负性情绪，以及是否存在定向、注意、记忆或语言障碍，并给出依据。"
        ),
        "detection": (
            "你在协助临床医生。{profile_block}访谈文本：\n{transcript}\n"
            "此人是否有{disorder}的迹象？请只回答一个词：是 或 否。"
        ),
        "profile_block": "此人的情绪-认知画像：\n{profile}\n",
        "text_baseline": (
            "以下是某人在临床访谈中说的话：\n{transcript}\n"
            "请描述说话人的情绪状态（负性、中性或正性，并给出线索）以及是否存在认知障碍的迹象（定向、注意、记忆、语言）。"
            "请严格按以下格式回答：\nEmotion:\n<一句话>\n\nCognition:\n<一句话>"
        ),
    },
}


def get_prompt(kind: str, language: str = "en", **fields) -> str:
    """Fill one prompt template; unknown kinds or languages raise a ValueError naming the choices."""
    if language not in PROMPTS:
        raise ValueError(f"unknown prompt language {language!r}; choose one of {sorted(PROMPTS)}")
    templates = PROMPTS[language]
    if kind not in templates:
        raise ValueError(f"unknown prompt kind {kind!r}; choose one of {sorted(templates)}")
    return templates[kind].format(**fields) if fields else templates[kind]
