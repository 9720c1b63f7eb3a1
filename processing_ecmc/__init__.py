"""ECMC processing package: the processor, prompts and caption format, media decoding, data sets."""

from .prompts_ecmc import COGNITION_LABELS, EMOTION_LABELS, format_caption, get_prompt, split_caption

__all__ = ["COGNITION_LABELS", "EMOTION_LABELS", "format_caption", "get_prompt", "split_caption", "ECMCProcessor"]


def __getattr__(name):  # the processor pulls in decord/torchaudio: import it on first use
    if name == "ECMCProcessor":
        # model_type "ecmc" known to AutoConfig: the tokenizer then reads a checkpoint's config.json
        # without asking to run the checkpoint's code (trust_remote_code)
        import modeling_ecmc.configuration_ecmc  # noqa: F401

        from .processing_ecmc import ECMCProcessor

        return ECMCProcessor
    raise AttributeError(name)
