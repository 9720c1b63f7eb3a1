"""ECMCProcessor: media files + transcripts (+ captions) -> model inputs; generated ids -> captions.

One processor serves training, evaluation, the pipeline and the demo. Per utterance it takes a
video file and/or an audio file (with optional start/end seconds within the file) and a transcript:
- video: `load_video_frames` samples `num_frames` frames of the segment by seeking, then the video
  encoder's image processor;
- audio: the separate audio file, else the video's own track; mono, resampled, then the audio
  encoder's feature extractor;
- text: the text encoder's tokenizer;
- decoder prompt: [BOS] + l_q emotion placeholders + l_q cognition placeholders + the caption prompt
  (Eq. 3), left-padded for generation; with target captions, the caption and EOS follow and
  `labels` mark only the caption tokens (right-padded).
A missing modality is marked in `modality_mask` (batch, 3: video, audio, text), never faked.
Bad inputs are a `ValueError` naming the utterance (and its file): media problems are `MediaError`s
from `media_ecmc`; a transcript or caption that is not text or not valid Unicode, an empty
transcript, frames that are not uint8 (T >= 1, H, W, 3), a waveform that is not 1-D, empty or not
finite.

This file travels inside saved checkpoints: it imports only transformers, numpy, torch and its
siblings (media decoding needs decord and torchaudio).
"""

import warnings

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin

from .media_ecmc import MediaError, NoAudioTrackError, load_audio, load_video_frames, media_duration, segment_length
from .padding_ecmc import pad_stack
from .prompts_ecmc import detection_prompt, get_prompt, profile_prompt
from .vocabulary_ecmc import (
    DEFAULT_LANGUAGE,
    IGNORE_INDEX,
    LANGUAGES,
    MIN_UTTERANCE_SECONDS,
    MODALITIES,
    PLACEHOLDER_TOKENS,
    RAW_INPUTS,
    format_caption,
    split_caption,
)


def _as_list(value, batch: int, name: str):
    if value is None or isinstance(value, (str, bytes, int, float)):
        return [value] * batch
    value = list(value)
    if len(value) != batch:
        raise ValueError(f"{name} has {len(value)} items for a batch of {batch}")
    return value


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, torch.Tensor))


def _one_array_as_item(value, ndim: int):
    """One decoded video (4-D) or waveform (1-D) is one utterance, not a list of its rows."""
    return [value] if _is_array(value) and value.ndim == ndim else value


def _check_text(text, what: str, where: str) -> None:
    if not isinstance(text, str):
        raise ValueError(f"{where}: {what} must be text (str), got {type(text).__name__}"
                         + ("; decode the bytes as UTF-8 first" if isinstance(text, bytes) else ""))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where}: {what} is not valid Unicode (lone surrogate at character {exc.start}: "
                         "decoded from non-UTF-8 bytes?)") from None


def _check_inputs(i, frames, waveform, transcript, video, audio):
    """Validate one utterance's decoded inputs (a clear ValueError naming it); return the waveform
    as a float32 array."""
    where = f"utterance {i}" + (f" ({audio or video})" if (audio or video) else "")
    if transcript is not None:
        _check_text(transcript, "the transcript", where)
        if not transcript.strip():
            raise ValueError(f"{where}: the transcript is empty (pass None to mark the text as missing)")
    if frames is not None:
        shape, dtype = getattr(frames, "shape", None), getattr(frames, "dtype", None)
        if shape is None or len(shape) != 4 or shape[-1] != 3 or shape[0] < 1 or str(dtype) not in ("uint8", "torch.uint8"):
            raise ValueError(f"{where}: frames must be a uint8 array (frames >= 1, height, width, 3), "
                             f"got {type(frames).__name__} {tuple(shape) if shape is not None else ''} {dtype or ''}")
    if waveform is not None:
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1 or waveform.size == 0:
            raise ValueError(f"{where}: the waveform must be 1-D mono with samples, got shape {waveform.shape}")
        if not np.all(np.isfinite(waveform)):
            raise ValueError(f"{where}: the waveform contains NaN or Inf")
    return waveform


def add_placeholder_tokens(tokenizer) -> dict:
    """Register the emotion / cognition placeholder tokens with the LLM tokenizer (once) and return
    their ids {stream: id}, the config's `emotion_token_id` / `cognition_token_id`."""
    missing = [t for t in PLACEHOLDER_TOKENS.values() if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    return {stream: tokenizer.convert_tokens_to_ids(token) for stream, token in PLACEHOLDER_TOKENS.items()}


class ECMCProcessor(ProcessorMixin):
    r"""
    Args:
        image_processor: the video encoder's image processor (e.g. `VideoMAEImageProcessor`).
        feature_extractor: the audio encoder's feature extractor (e.g. `Wav2Vec2FeatureExtractor`).
        tokenizer: the LLM decoder's tokenizer, with the two placeholder tokens added.
        text_tokenizer: the text encoder's tokenizer.
        num_frames: video frames sampled per utterance.
        num_query_tokens: placeholders per stream in the prompt: the model's l_q, or its
            `soft_tokens_per_stream` (l_q per modality with `soft_tokens: per_modality`).
        max_text_tokens / max_caption_tokens: truncation lengths for transcripts and captions.
        max_audio_seconds: longer audio segments are rejected with a clear error.
        min_seconds: shorter utterances read from files are rejected with a clear error (the paper's
            2 s, the limit data sets are built with); lowering it below 2 s warns once.
        language: default prompt language, "en" or "zh".
        face_crop: cut every utterance's sampled frames to the patient's face (`faces_ecmc`: one face
            track, a `face_margin`-padded square) before the image processor; an utterance with no
            face in any sampled frame gets its video marked missing (with a warning naming it), never
            a frame without a face. Off: the whole frame, as before (the offline front end reads
            ECMC-Synth's own fixed crop box). Needs opencv-python-headless 4.x.
        face_margin: padding on each side of the face box, as a fraction of its side.
        prompt_transcript: write each utterance's transcript into the decoder prompt (the model
            config's `prompt_transcript`, which `training_ecmc.run` copies here); rows without a
            transcript get the plain prompt.
    """

    # load_media takes a decoded audio segment (checkpoints saved before it carry code that does not)
    takes_audio_waveforms = True

    def __init__(self, image_processor=None, feature_extractor=None, tokenizer=None, text_tokenizer=None,
                 num_frames: int = 8, num_query_tokens: int = 32, max_text_tokens: int = 128,
                 max_caption_tokens: int = 192, max_audio_seconds: float = 60.0,
                 min_seconds: float = MIN_UTTERANCE_SECONDS, language: str = DEFAULT_LANGUAGE,
                 face_crop: bool = False, face_margin: float = 0.25, prompt_transcript: bool = False, **kwargs):
        super().__init__(image_processor, feature_extractor, tokenizer, text_tokenizer, **kwargs)
        self.num_frames = num_frames
        self.num_query_tokens = num_query_tokens
        self.max_text_tokens = max_text_tokens
        self.max_caption_tokens = max_caption_tokens
        self.max_audio_seconds = max_audio_seconds
        self.min_seconds = min_seconds
        self.language = language
        self.face_crop = face_crop
        self.face_margin = face_margin
        self.prompt_transcript = prompt_transcript
        add_placeholder_tokens(tokenizer)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    @property
    def placeholder_ids(self) -> dict:
        return add_placeholder_tokens(self.tokenizer)

    # ----- media -------------------------------------------------------------------------
    def load_media(self, video=None, audio=None, start=None, end=None, min_seconds=None):
        """(frames or None, waveform or None) of one utterance. A video without an audio track
        gives no waveform (the modality is then marked missing); an utterance shorter than
        `min_seconds` (None: the processor's) and every other problem raise a `MediaError` naming
        the file. The feature cache passes 0: its rows were filtered when the data set was built.
        `audio` may also be the segment's waveform already decoded (a mono float array at the feature
        extractor's rate; `start` / `end` then cut the video only): a long recording's turn read
        without decoding its whole track."""
        frames = load_video_frames(video, start, end, self.num_frames) if video else None
        if _is_array(audio):
            waveform = np.asarray(audio, dtype=np.float32).reshape(-1)
            seconds = len(waveform) / self.sampling_rate
            if seconds > self.max_audio_seconds:
                raise MediaError(f"the audio given lasts {seconds:.1f} s, longer than max_audio_seconds="
                                 f"{self.max_audio_seconds}")
            if video:
                self._check_duration([video], start, end, self.min_seconds if min_seconds is None else min_seconds)
            return frames, waveform
        source = audio or video
        waveform = None
        if source:
            try:
                waveform = load_audio(source, start, end, self.sampling_rate)
            except NoAudioTrackError:
                if audio:  # a separate audio file without audio is an error, a silent video is not
                    raise
            if waveform is not None and len(waveform) > self.max_audio_seconds * self.sampling_rate:
                raise MediaError(
                    f"{source}: segment of {len(waveform) / self.sampling_rate:.1f} s is longer than "
                    f"max_audio_seconds={self.max_audio_seconds}"
                )
        if source:
            self._check_duration([f for f in (video, audio) if f], start, end,
                                 self.min_seconds if min_seconds is None else min_seconds)
        return frames, waveform

    def _check_duration(self, files, start, end, min_seconds):
        """The data build's measure (`media_ecmc.segment_length` over the files' durations)."""
        if min_seconds <= 0:  # the feature cache: the data build checked the rows
            return
        if min_seconds < MIN_UTTERANCE_SECONDS:
            warnings.warn(f"min_seconds={min_seconds:g} is below the paper's {MIN_UTTERANCE_SECONDS:g} s: shorter "
                          "utterances carry little evidence, and a model trained on ECMC data never saw them",
                          UserWarning, stacklevel=3)
        seconds = segment_length(start, end, min(media_duration(f) for f in files))
        if seconds < min_seconds:
            raise MediaError(f"{files[0]}: the utterance lasts {seconds:.2f} s, shorter than min_seconds={min_seconds:g} "
                             "(the paper's rule, the limit data sets are built with); give a longer segment, or "
                             "lower processor.min_seconds")

    # ----- model inputs --------------------------------------------------------------------
    def __call__(self, videos=None, audios=None, transcripts=None, captions=None, starts=None, ends=None,
                 frames=None, waveforms=None, language=None, return_tensors="pt", audio=None, sampling_rate=None,
                 **kwargs) -> BatchFeature:
        """Batch of utterances -> model inputs. Each argument is one item or a list (one per utterance).
        `videos` / `audios` (or `audio`, transformers' name) are file paths, or already decoded media:
        a uint8 (T, H, W, 3) array per video, a float mono array per audio at `sampling_rate` (which,
        when given, must be the feature extractor's). `frames` / `waveforms` take decoded media too.
        Frames are sampled uniformly to `num_frames`. `captions` are full target captions
        ("Emotion:\\n...\\n\\nCognition:\\n...") or (emotion, cognition) pairs."""
        if audio is not None:
            if audios is not None:
                raise ValueError("give audio= or audios= (the same argument), not both")
            audios = audio
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"audio at {sampling_rate} Hz was given, but the feature extractor expects "
                             f"{self.sampling_rate} Hz: resample it first (e.g. torchaudio.functional.resample)")
        videos, audios, frames, waveforms = (_one_array_as_item(v, ndim) for v, ndim in
                                             ((videos, 4), (audios, 1), (frames, 4), (waveforms, 1)))
        if isinstance(captions, tuple):  # one (emotion, cognition) pair, not a batch of two
            captions = [captions]
        batch = next(
            (len(v) for v in (videos, audios, transcripts, frames, waveforms, captions) if isinstance(v, (list, tuple))),
            1,
        )
        videos, audios = _as_list(videos, batch, "videos"), _as_list(audios, batch, "audios")
        captions = _as_list(captions, batch, "captions") if captions is not None else None
        starts, ends = _as_list(starts, batch, "starts"), _as_list(ends, batch, "ends")
        transcripts = _as_list(transcripts, batch, "transcripts")
        frames = list(frames) if isinstance(frames, (list, tuple)) else [frames] * batch
        waveforms = list(waveforms) if isinstance(waveforms, (list, tuple)) else [waveforms] * batch
        for i in range(batch):  # decoded media given where paths go
            if _is_array(videos[i]):
                frames[i], videos[i] = videos[i], None
            if _is_array(audios[i]):
                waveforms[i], audios[i] = audios[i], None
        frames = [self._sample_frames(f) for f in frames]
        for i in range(batch):
            if frames[i] is None and waveforms[i] is None and (videos[i] or audios[i]):
                frames[i], waveforms[i] = self.load_media(videos[i], audios[i], starts[i], ends[i])
        if all(f is None for f in frames) and all(w is None for w in waveforms) and all(t is None for t in transcripts):
            raise ValueError("no input: give at least one of videos, audios (or frames, waveforms) and transcripts")
        waveforms = [_check_inputs(i, frames[i], waveforms[i], transcripts[i], videos[i], audios[i]) for i in range(batch)]
        if self.face_crop:
            frames = [self.crop_face(f, f"utterance {i}" + (f" ({videos[i]})" if videos[i] else ""))
                      for i, f in enumerate(frames)]

        decoded = {"video": frames, "audio": waveforms, "text": transcripts}
        present = torch.tensor([[decoded[m][i] is not None for m in MODALITIES] for i in range(batch)])
        data = {"modality_mask": present}
        data.update(self._video_inputs(frames))
        data.update(self._audio_inputs(waveforms))
        data.update(self._text_inputs(transcripts))
        data.update(self.caption_inputs(captions, language or self.language, batch=batch, transcripts=transcripts))
        return BatchFeature(data=data, tensor_type=return_tensors)

    def crop_face(self, frames, where: str = "the clip"):
        """`frames` cut to the patient's face (`faces_ecmc`), or None (a warning naming `where`) when no
        sampled frame shows a face: the video is then marked missing, like a clip without video."""
        if frames is None:
            return None
        from .faces_ecmc import crop_faces, face_track

        frames = np.asarray(frames)
        crops = crop_faces(frames, face_track(frames), self.face_margin)
        if crops is None:
            warnings.warn(f"{where}: no face in any of the {len(frames)} sampled frames; its video is marked "
                          "missing (face_crop is on)", UserWarning, stacklevel=3)
        return crops

    def _sample_frames(self, frames):
        """A decoded video as `num_frames` uniformly spaced frames (numpy), as files are sampled."""
        if frames is None:
            return None
        frames = frames.numpy() if isinstance(frames, torch.Tensor) else frames
        if getattr(frames, "ndim", 0) == 4 and len(frames) not in (0, self.num_frames):
            frames = frames[np.linspace(0, len(frames) - 1, self.num_frames).round().astype(int)]
        return frames

    def _video_inputs(self, frames) -> dict:
        if all(f is None for f in frames):
            return {}
        shape = next(f for f in frames if f is not None).shape
        filled = [f if f is not None else np.zeros(shape, dtype=np.uint8) for f in frames]
        pixels = self.image_processor(filled, return_tensors="pt")["pixel_values"]
        return {"pixel_values_videos": pixels}

    def _audio_inputs(self, waveforms) -> dict:
        if all(w is None for w in waveforms):
            return {}
        filled = [np.asarray(w, dtype=np.float32) if w is not None else np.zeros(self.sampling_rate // 10, np.float32)
                  for w in waveforms]
        out = self.feature_extractor(filled, sampling_rate=self.sampling_rate, padding=True,
                                     return_attention_mask=True, return_tensors="pt")
        mask = out["attention_mask"]
        for i, w in enumerate(waveforms):
            if w is None:
                mask[i] = 0
        return {"input_values": out["input_values"], "audio_attention_mask": mask}

    def _text_inputs(self, transcripts) -> dict:
        if all(t is None for t in transcripts):
            return {}
        out = self.text_tokenizer([t or "" for t in transcripts], padding=True, truncation=True,
                                  max_length=self.max_text_tokens, return_tensors="pt")
        mask = out["attention_mask"]
        for i, t in enumerate(transcripts):
            if t is None:
                mask[i] = 0
        return {"text_input_ids": out["input_ids"], "text_attention_mask": mask}

    def prompt_ids(self, language: str = DEFAULT_LANGUAGE, transcript: str | None = None) -> list[int]:
        """[BOS] + emotion placeholders + cognition placeholders + caption prompt (Eq. 3); with
        `prompt_transcript` on, the transcript (at most `max_text_tokens`) before the caption prompt."""
        ids = self.placeholder_ids
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        words = []
        if self.prompt_transcript and transcript:
            said = self.tokenizer(transcript, add_special_tokens=False)["input_ids"]
            if len(said) > self.max_text_tokens:
                transcript = self.tokenizer.decode(said[: self.max_text_tokens])
            words = self.tokenizer(get_prompt("transcript", language, transcript=transcript),
                                   add_special_tokens=False)["input_ids"]
        prompt = self._instruction_ids(language)
        return bos + [ids["emotion"]] * self.num_query_tokens + [ids["cognition"]] * self.num_query_tokens + words + prompt

    def _instruction_ids(self, language: str) -> list[int]:
        return self.tokenizer(get_prompt("caption", language), add_special_tokens=False)["input_ids"]

    def caption_inputs(self, captions=None, language=None, batch: int | None = None, transcripts=None) -> dict:
        """Decoder inputs alone: the prompt for `batch` generations, or prompt + target caption with
        `labels` for each of `captions` (full captions or (emotion, cognition) pairs). `language` is
        one language for every row or a list of one per row (None: the processor's `language`).
        `transcripts` (one per row, None where a row has none) are required with `prompt_transcript`."""
        if isinstance(captions, tuple):
            captions = [captions]
        if batch is None:
            batch = len(captions) if captions is not None else len(language) if isinstance(language, list) else 1
        languages = [lang or self.language for lang in _as_list(language, batch, "language")]
        if self.prompt_transcript and transcripts is None:
            raise ValueError("this processor writes the transcript into the decoder prompt (prompt_transcript): "
                             "pass transcripts= (None for a row without one)")
        transcripts = _as_list(transcripts, batch, "transcripts")
        if self.prompt_transcript and captions is None and not all(transcripts):
            # generation only (training rows may lack text): the model learnt from prompts with the words
            warnings.warn("this checkpoint writes the transcript into the decoder prompt (prompt_transcript), and "
                          f"{sum(not t for t in transcripts)} of {batch} utterances have none: their captions "
                          "come from a prompt unlike training's; give each utterance its transcript", UserWarning,
                          stacklevel=2)
        prompts = [self.prompt_ids(lang, said) for lang, said in zip(languages, transcripts)]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        if captions is None:  # generation: left padding, so that every prompt ends at the last position
            ids, mask = pad_stack([torch.tensor(p) for p in prompts], pad, side="left")
            return {"input_ids": ids, "attention_mask": mask}
        captions = _as_list(captions, batch, "captions")
        sequences, labels = [], []
        for prompt, caption in zip(prompts, captions):
            if isinstance(caption, (tuple, list)):
                for part in caption:
                    _check_text(part, "a caption part", "captions")
                caption = format_caption(*caption)
            _check_text(caption, "a target caption", "captions")
            if not caption.strip():
                raise ValueError("a target caption is empty")
            target = self.tokenizer(caption, add_special_tokens=False)["input_ids"][: self.max_caption_tokens]
            target = target + [self.tokenizer.eos_token_id]
            sequences.append(torch.tensor(prompt + target))
            labels.append(torch.tensor([IGNORE_INDEX] * len(prompt) + target))
        # training: right padding; the loss ignores the prompt and the padding
        ids, mask = pad_stack(sequences, pad)
        label_tensor, _ = pad_stack(labels, IGNORE_INDEX)
        return {"input_ids": ids, "attention_mask": mask, "labels": label_tensor}

    # ----- outputs -----------------------------------------------------------------------
    def post_process_caption(self, generated_ids, prompt_length: int | None = None) -> list[dict]:
        """Generated ids (batch, seq) -> [{"caption", "emotion", "cognition"}]. The prompt is cut
        off: `prompt_length` tokens when given, else each row's ECMC prompt wherever it ends (so the
        full output of `model.generate` can be passed as it is)."""
        if prompt_length:
            rows = generated_ids[:, prompt_length:].tolist()
        else:
            rows = [self._strip_prompt(row) for row in generated_ids.tolist()]
        texts = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return [{"caption": text.strip(), **split_caption(text)} for text in texts]

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens=True, **kwargs) -> list[str]:
        """transformers' name for decoding a multimodal model's `generate` output: the whole captions
        ("Emotion:\\n...\\n\\nCognition:\\n..."), prompts cut off (`post_process_caption` gives the parts)."""
        return [c["caption"] for c in self.post_process_caption(generated_outputs, kwargs.get("prompt_length"))]

    def _strip_prompt(self, row: list) -> list:
        """The ids after this row's ECMC prompt (the block of cognition placeholders, then the caption
        instruction of any language); a row that does not hold the prompt (new tokens only) stays."""
        cognition = self.placeholder_ids["cognition"]
        if cognition not in row:
            return row
        start = row.index(cognition) + self.num_query_tokens
        if row[start - self.num_query_tokens:start] != [cognition] * self.num_query_tokens:
            return row
        for language in LANGUAGES:
            prompt = self._instruction_ids(language)
            # right after the placeholders, or after the transcript block (`prompt_transcript`)
            for at in range(start, len(row) - len(prompt) + 1) if self.prompt_transcript else (start,):
                if row[at:at + len(prompt)] == prompt:
                    return row[at + len(prompt):]
        return row

    def profile_prompt(self, captions: list[str], language: str | None = None, tokenizer=None) -> str:
        """Eq. 4: the chat-formatted instruction that turns one subject's captions into a profile
        (in `tokenizer`'s chat template when another LLM writes the profile)."""
        return profile_prompt(tokenizer or self.tokenizer, list(captions), language or self.language)

    def detection_prompt(self, transcript: str, disorder: str, profile: str | None = None,
                         language: str | None = None) -> str:
        """Eq. 5: the chat-formatted yes/no question about `disorder`, with or without the profile."""
        return detection_prompt(self.tokenizer, transcript, disorder, profile, language or self.language)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", *(n for m in MODALITIES for n in RAW_INPUTS[m] if n), "modality_mask"]


ECMCProcessor.register_for_auto_class()

__all__ = ["ECMCProcessor", "add_placeholder_tokens"]
