"""The "ecmc-captioning" pipeline: an utterance's media files + transcript -> emotion and cognition
captions; one subject's captions -> an emotion-cognition profile (Eq. 4).

    from transformers import pipeline

    pipe = pipeline(model="outputs/demo/checkpoint", trust_remote_code=True)   # task read from the config
    pipe({"video": "session.mp4", "start": 12.0, "end": 17.5, "transcript": "I can't remember the date."})
    # -> {"emotion": "...", "cognition": "...", "caption": "Emotion:\\n...\\n\\nCognition:\\n...", "generated_text": <caption>}
    pipe([utterance, ...], batch_size=8)          # batched; the same greedy text as one at a time
    pipe({"captions": [caption, ...]})            # -> {"profile": "..."}

Utterance keys: "video" and/or "audio" (file paths; without "audio" the video's own track is used;
"audio" may also be the segment's waveform, a mono float array at the processor's sampling rate),
"start" / "end" (seconds within the files), "transcript", "language" ("en" / "zh"); any of video,
audio and transcript may be missing (the modality is masked, never faked). Captions are generated
with the checkpoint's `generation_config` (greedy, 128 new tokens: `generation_ecmc.py`), profiles
greedily with 256 new tokens, unless `max_new_tokens=` / `generate_kwargs=` say otherwise. Each caption
result also carries `generated_text` (the whole caption), the key transformers' pipelines use.

One inference path: `ECMCProcessor` -> `model.generate` -> `processor.post_process_caption`, as in
evaluation. Profiles are written from `processor.profile_prompt` by the checkpoint's own LLM
(`model.language_model`), or by `profile_model=` (with `profile_tokenizer=` when its tokenizer is not
the checkpoint's): pass the untouched LLM for a checkpoint whose stage 2 merged a LoRA into the
decoder (`config.decoder_lora`), which answers every prompt with a caption. Nothing here logs
transcripts, captions or profiles.

This file travels inside saved checkpoints (`ECMCForConditionalGeneration.save_pretrained` copies it
and registers it in `config.custom_pipelines`): it imports only transformers, torch and its siblings.
"""

from collections.abc import Sized

from transformers import AutoModelForCausalLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator
from transformers.utils import logging

from .generation_ecmc import generate_texts
from .vocabulary_ecmc import MAX_NEW_TOKENS

logger = logging.get_logger(__name__)

PIPELINE_TASK = "ecmc-captioning"
UTTERANCE_KEYS = ("video", "audio", "start", "end", "transcript", "language")
PROFILE_KEYS = ("captions", "language")


def _concat(items: list) -> list:
    """Collate: each preprocessed input is a one-item list; a batch is their concatenation."""
    return [x for item in items for x in item]


class ECMCCaptioningPipeline(Pipeline):
    """Utterances (media + transcript) -> {"emotion", "cognition", "caption"}; {"captions": [...]} -> {"profile"}."""

    # everything comes from the checkpoint's ECMCProcessor
    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_video_processor = False

    def __init__(self, *args, profile_model=None, profile_tokenizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        # the LLM (and its tokenizer) that writes profiles; public attributes, may be replaced later
        self.profile_model = profile_model if profile_model is not None else self.model.language_model
        self.profile_tokenizer = profile_tokenizer or self.processor.tokenizer

    def _sanitize_parameters(self, max_new_tokens=None, generate_kwargs=None, language=None, **unknown):
        if unknown:
            raise TypeError(f"{PIPELINE_TASK}: unknown argument(s) {sorted(unknown)}; use max_new_tokens=, "
                            "generate_kwargs= or language=")
        preprocess, forward = {}, {}
        if language is not None:
            preprocess["language"] = language
        if generate_kwargs or max_new_tokens is not None:  # a call's settings update those given at construction
            forward["generate_kwargs"] = {**getattr(self, "_forward_params", {}).get("generate_kwargs", {}),
                                          **(generate_kwargs or {})}
            if max_new_tokens is not None:
                forward["generate_kwargs"]["max_new_tokens"] = max_new_tokens
        return preprocess, forward, {}

    # ----- one input -> one item (media decoded here, so a bad file fails before any generation)
    def preprocess(self, inputs, language=None):
        if not isinstance(inputs, dict):
            raise ValueError(f"{PIPELINE_TASK} takes a dict (or a list of dicts) with keys from {UTTERANCE_KEYS}, "
                             f"or {{'captions': [...]}} for a profile; got {type(inputs).__name__}")
        language = inputs.get("language") or language or self.processor.language
        if "captions" in inputs:
            return [self._profile_item(inputs, language)]
        unknown = sorted(set(inputs) - set(UTTERANCE_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in an utterance; expected some of {UTTERANCE_KEYS} "
                             "(or 'captions' for a profile)")
        video, audio, transcript = inputs.get("video"), inputs.get("audio"), inputs.get("transcript")
        if not (video or audio is not None or transcript is not None):
            raise ValueError(f"an utterance needs at least one of 'video', 'audio', 'transcript'; got keys {sorted(inputs)}")
        if transcript is not None:
            if not isinstance(transcript, str):
                raise ValueError(f"'transcript' must be a string, got {type(transcript).__name__}")
            if not transcript.strip():
                raise ValueError("'transcript' is empty: give the words spoken, or leave the key out if there are none")
        frames, waveform = self.processor.load_media(video, audio, inputs.get("start"), inputs.get("end"))
        return [{"kind": "caption", "language": language, "frames": frames, "waveform": waveform,
                 "transcript": transcript}]

    @staticmethod
    def _profile_item(inputs, language):
        unknown = sorted(set(inputs) - set(PROFILE_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in a profile request; expected {PROFILE_KEYS}")
        captions = inputs["captions"]
        if isinstance(captions, str) or not isinstance(captions, (list, tuple)) or not captions:
            raise ValueError("'captions' must be a non-empty list of caption strings (one subject's utterances)")
        if not all(isinstance(c, str) and c.strip() for c in captions):
            raise ValueError("every item of 'captions' must be a non-empty string")
        return {"kind": "profile", "language": language, "captions": list(captions)}

    # ----- a batch of items -> one result per item
    def _forward(self, items, generate_kwargs=None):
        results = [None] * len(items)
        groups = {}  # one processor call / generate per (kind, language)
        for i, item in enumerate(items):
            groups.setdefault((item["kind"], item["language"]), []).append(i)
        for (kind, language), indices in groups.items():
            chosen = [items[i] for i in indices]
            # captions: the checkpoint's generation_config (greedy, a whole caption) under the call's
            # settings; profiles come from `profile_model`, which may be another LLM: greedy, 256 tokens
            settings = dict(generate_kwargs or {})
            if kind == "profile":
                settings = {"max_new_tokens": MAX_NEW_TOKENS["profile"], "do_sample": False, **settings}
            outputs = self._captions(chosen, language, settings) if kind == "caption" else self._profiles(
                chosen, language, settings)
            for i, out in zip(indices, outputs):
                results[i] = out
        return {"results": results}

    def _captions(self, items, language, settings) -> list[dict]:
        inputs = self.processor(frames=[x["frames"] for x in items], waveforms=[x["waveform"] for x in items],
                                transcripts=[x["transcript"] for x in items], language=language)
        inputs = inputs.to(self.device, self.model.dtype)  # floats to the model's dtype, ids stay integers
        ids = self.model.generate(**inputs, **settings)
        captions = self.processor.post_process_caption(ids, inputs["input_ids"].shape[1])
        # `generated_text`: the key transformers' text-generating pipelines use, beside ECMC's own
        return [{"emotion": c["emotion"], "cognition": c["cognition"], "caption": c["caption"],
                 "generated_text": c["caption"]} for c in captions]

    def _profiles(self, items, language, settings) -> list[dict]:
        if self.profile_model is self.model.language_model and getattr(self.model.config, "decoder_lora", None):
            logger.warning_once("this checkpoint's decoder carries a LoRA merged in stage 2 and answers with captions: "
                                "pass profile_model= (e.g. the untouched LLM) for profiles")
        prompts = [self.processor.profile_prompt(x["captions"], language, self.profile_tokenizer) for x in items]
        max_new_tokens = settings.pop("max_new_tokens")
        texts = generate_texts(self.profile_model, self.profile_tokenizer, prompts, max_new_tokens,
                               batch_size=len(prompts), **settings)
        return [{"profile": text} for text in texts]

    def postprocess(self, model_outputs):
        results = model_outputs["results"]  # a list when run alone, one item when unbatched by the iterator
        return results[0] if isinstance(results, list) else results

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        # As `Pipeline.get_iterator`, but items are collated by list concatenation: the processor pads
        # the whole batch itself in `_forward`, exactly as for one utterance.
        import torch

        if isinstance(inputs, Sized):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:
            dataset = PipelineIterator(inputs, self.preprocess, preprocess_params)
            num_workers = min(num_workers, 1)
        loader = torch.utils.data.DataLoader(dataset, num_workers=num_workers, batch_size=batch_size,
                                             collate_fn=_concat)
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)


def load_pipeline(checkpoint, device=None, **kwargs) -> ECMCCaptioningPipeline:
    """`pipeline(model=checkpoint, trust_remote_code=True)`; for a checkpoint saved before checkpoints
    carried the pipeline (no `custom_pipelines` in its config), this class over its model and processor."""
    from transformers import AutoConfig, AutoProcessor, pipeline

    checkpoint = str(checkpoint)
    if getattr(AutoConfig.from_pretrained(checkpoint, trust_remote_code=True), "custom_pipelines", None):
        return pipeline(model=checkpoint, trust_remote_code=True, device=device, **kwargs)
    return ECMCCaptioningPipeline(model=AutoModelForCausalLM.from_pretrained(checkpoint, trust_remote_code=True),
                                  processor=AutoProcessor.from_pretrained(checkpoint, trust_remote_code=True),
                                  task=PIPELINE_TASK, device=device, **kwargs)


def custom_pipelines_config() -> dict:
    """The `config.custom_pipelines` entry (the form `Pipeline.save_pretrained` writes) that lets
    `pipeline(model=folder, trust_remote_code=True)` find this pipeline without naming the task."""
    module = ECMCCaptioningPipeline.__module__.rsplit(".", 1)[-1]
    return {PIPELINE_TASK: {"impl": f"{module}.{ECMCCaptioningPipeline.__name__}", "pt": ["AutoModelForCausalLM"],
                            "type": "multimodal"}}


if PIPELINE_TASK not in PIPELINE_REGISTRY.supported_tasks:  # our package and a checkpoint's copy may both load
    PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=ECMCCaptioningPipeline,
                                        pt_model=AutoModelForCausalLM, type="multimodal")

__all__ = ["ECMCCaptioningPipeline", "PIPELINE_TASK", "load_pipeline", "custom_pipelines_config"]
