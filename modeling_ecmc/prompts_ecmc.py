"""Every prompt ECMC writes (caption, profile, detection, text-only baseline), in each language.

This file travels inside saved checkpoints (the processor imports it), so it imports only its siblings.
"""

from .vocabulary_ecmc import DEFAULT_LANGUAGE

PROMPTS = {
    "en": {
        "caption": (
            "Describe the speaker's emotional state and any signs of cognitive impairment "
            "(orientation, attention, memory, language).\n"
        ),
        # `prompt_transcript`: the words, before the caption instruction
        "transcript": "The speaker said: \"{transcript}\"\n",
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
        "transcript": "说话人说：“{transcript}”\n",
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


def get_prompt(kind: str, language: str = DEFAULT_LANGUAGE, **fields) -> str:
    """Fill one prompt template; unknown kinds or languages raise a ValueError naming the choices."""
    if language not in PROMPTS:
        raise ValueError(f"unknown prompt language {language!r}; choose one of {sorted(PROMPTS)}")
    templates = PROMPTS[language]
    if kind not in templates:
        raise ValueError(f"unknown prompt kind {kind!r}; choose one of {sorted(templates)}")
    return templates[kind].format(**fields) if fields else templates[kind]


# The disorder names the detection prompt asks about, per language (any other name is used as given).
DISORDER_NAMES = {"en": {"depression": "depression", "anxiety": "anxiety"},
                  "zh": {"depression": "抑郁", "anxiety": "焦虑"}}


def chat_prompt(tokenizer, content: str) -> str:
    """`content` as one user turn of the tokenizer's chat template (plain text + newline without one)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True)
    return content + "\n"


def profile_prompt(tokenizer, captions, language: str = DEFAULT_LANGUAGE) -> str:
    """Eq. 4: one subject's captions, numbered, in the "profile" template, chat-formatted for `tokenizer`."""
    listed = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(captions))
    return chat_prompt(tokenizer, get_prompt("profile", language, captions=listed))


def detection_prompt(tokenizer, transcript: str, disorder: str, profile: str | None = None,
                     language: str = DEFAULT_LANGUAGE) -> str:
    """Eq. 5: the chat-formatted yes/no question about `disorder` (a name as written in the prompt),
    with the profile block when a profile is given."""
    block = get_prompt("profile_block", language, profile=profile) if profile else ""
    return chat_prompt(tokenizer, get_prompt("detection", language, profile_block=block, transcript=transcript,
                                             disorder=disorder))
