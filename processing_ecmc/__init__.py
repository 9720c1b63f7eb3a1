"""ECMC processing package: the processor, prompts and caption format, media decoding, data sets."""

from .prompts_ecmc import COGNITION_LABELS, EMOTION_LABELS, format_caption, get_prompt, split_caption

__all__ = ["COGNITION_LABELS", "EMOTION_LABELS", "format_caption", "get_prompt", "split_caption", "ECMCProcessor"]


def __getattr__(name):  # the processor pulls in decord/torchaudio: import it on first use
    if name == "ECMCProcessor":
        from .processing_ecmc import ECMCProcessor

        return ECMCProcessor
    raise AttributeError(name)
