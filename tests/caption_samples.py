"""Captions shared by the caption-metric tests: English and Chinese predictions and references (with
empty, one-word and header-less captions), and independent re-implementations to check against."""

import unicodedata

from modeling_ecmc.vocabulary_ecmc import format_caption, split_caption

EN_PRED = [
    format_caption("The speaker looks downcast and speaks slowly, suggesting negative emotion.",
                   "No obvious cognitive impairment: the answer is coherent and on topic."),
    format_caption("Positive emotion: a smile, a bright voice and happy talk of the garden.",
                   "Memory deficit: the speaker forgot an appointment."),
    format_caption("Neutral emotion.", ""),          # empty cognition part
    "",                                              # empty caption
    format_caption("Sad", "Forgetful"),              # one-word parts
    "The speaker seems calm; no cognitive problems.",  # free text without the headers
]
EN_REF = [
    format_caption("The speaker looks sad and speaks slowly in a low voice, suggesting negative emotion.",
                   "No signs of orientation, attention, memory or language problems."),
    format_caption("Positive emotion: a broad smile, a lively voice and warm words about the garden.",
                   "Memory deficit: the speaker cannot recall the previous day and forgot an appointment."),
    format_caption("Neutral emotion: a calm face and an even voice.", "Cognition appears intact in this answer."),
    format_caption("Negative emotion: a frown.", "Attention deficit: the speaker drifts off."),
    format_caption("Sad", "Memory deficit."),
    format_caption("The speaker keeps a neutral face.", "No obvious cognitive impairment."),
]
ZH_PRED = [
    format_caption("说话人面带愁容，语速缓慢，提示负性情绪。", "记忆障碍：说话人忘记了预约。"),
    format_caption("积极情绪：微笑，声音轻快，谈到了Garden 2号。", ""),
    format_caption("平静", "无"),
    "",
]
ZH_REF = [
    format_caption("说话人神情低落，语速缓慢，声音低沉，提示负性情绪。", "记忆障碍：说话人想不起昨天做了什么，忘记了预约。"),
    format_caption("积极情绪：笑容灿烂，声音明快，谈到garden 2号很开心。", "未见明显认知障碍。"),
    format_caption("中性情绪：表情平静。", "无"),
    format_caption("负性情绪。", "注意障碍：说话人走神。"),
]


def parts_independently(caption: str) -> dict:
    parts = split_caption(caption)
    return {"emotion": parts["emotion"], "cognition": parts["cognition"],
            "caption": " ".join(p for p in (parts["emotion"], parts["cognition"]) if p)}


def zh_chars(text: str) -> str:
    """An independent character tokeniser for the check (a plain loop instead of our regex)."""
    out, word = [], ""
    for ch in unicodedata.normalize("NFKC", text).lower():
        if "\u4e00" <= ch <= "\u9fff":
            out += [word] if word else []
            out.append(ch)
            word = ""
        elif ch.isalnum():
            word += ch
        else:
            out += [word] if word else []
            word = ""
    out += [word] if word else []
    return " ".join(out)
