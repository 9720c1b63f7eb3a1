"""Evaluate a trained ECMC checkpoint on a data set split and write one report.

    python -m evaluation_ecmc.run_evaluation --checkpoint outputs/demo/checkpoint --config configs/offline_demo.yaml

Steps: features from the feature cache (built if missing) -> batched greedy captions (saved to
`captions.jsonl`) -> caption metrics (Tables 1-2 layout) beside the "most frequent training caption"
baseline -> labels read back from the captions vs chance -> k-NN accuracy (fitted on the training
split) and t-SNE of h_e / h_c -> the text-only LLM baseline (`evaluate.text_baseline`) -> Figure 4 from the predicted captions ->
every subject's emotion-cognition profile (Eq. 4) and depression / anxiety detection with and
without profiles (Eq. 5, Tables 3-4; `evaluate.detection`, else one subject's profile) -> loss
curves of training -> `report.md` + `report.json` in `--output` (default `<output_dir>/evaluation`).
Captions, transcripts and profiles go to files only, never to the log.
"""

import argparse
import collections
import contextlib
import copy
import json
import logging
import os
import time
from pathlib import Path

import torch

from modeling_ecmc.vocabulary_ecmc import MAX_NEW_TOKENS

logger = logging.getLogger("ecmc.evaluate")


@contextlib.contextmanager
def timed(step: str):
    """Log how long one step of the evaluation took (the report's steps differ by minutes on a CPU)."""
    start = time.perf_counter()
    yield
    logger.info("%s: %.0f s", step, time.perf_counter() - start)


def bridge_batches(model, dataset, batch_size, desc=None):
    """(model inputs, BridgeNet output) per batch of a CachedFeatureDataset, in order (labels dropped)."""
    from tqdm.auto import tqdm

    from processing_ecmc.cached_dataset import collate_cached

    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_cached)
    for batch in tqdm(loader, desc=desc, unit="batch", disable=desc is None):
        for key in ("index", "emotion_labels", "cognition_labels"):
            batch.pop(key, None)
        yield batch, model.model(**batch)


@torch.no_grad()
def caption_split(model, processor, dataset, batch_size=16, max_new_tokens=None, language=None, transcripts=None):
    """Greedy captions and (h_e, h_c) for every item of a CachedFeatureDataset, in order. `language`:
    one for every item, a list of one per item (each prompt in its own), or None (the processor's).
    `max_new_tokens`: None takes the checkpoint's generation config (`generation_config.json`).
    `transcripts`: one per item, for a processor with `prompt_transcript` (required there).

    The BridgeNet runs once per batch: its output gives h_e / h_c and fills the prompt's placeholders
    (`model.embed_prompt`, what the model's forward does at prefill), and the decoder generates from
    those embeddings with the model's generation config (it then returns only the new tokens; the
    model's own `generate` takes no `inputs_embeds`)."""
    languages = [language] * len(dataset) if language is None or isinstance(language, str) else list(language)
    if len(languages) != len(dataset):
        raise ValueError(f"{len(languages)} languages for {len(dataset)} items")
    settings = copy.deepcopy(model.generation_config)  # the checkpoint's generation config, greedy
    settings.update(do_sample=False, **({"max_new_tokens": max_new_tokens} if max_new_tokens else {}))
    captions, h_e, h_c = [], [], []
    for batch, bridge in bridge_batches(model, dataset, batch_size, desc="Captioning"):
        n = len(bridge.h_e)
        h_e.append(bridge.h_e.float())
        h_c.append(bridge.h_c.float())
        rows = slice(len(captions), len(captions) + n)
        prompt = processor.caption_inputs(language=languages[rows], batch=n,
                                          transcripts=transcripts[rows] if transcripts is not None else None)
        ids = model.language_model.generate(inputs_embeds=model.embed_prompt(prompt["input_ids"], bridge),
                                            attention_mask=prompt["attention_mask"], generation_config=settings)
        captions += [c["caption"] for c in processor.post_process_caption(ids)]
    return captions, torch.cat(h_e).numpy(), torch.cat(h_c).numpy()


def llm_resolver(model, processor):
    """`detection.resolve_llm` that loads each choice once per evaluation (the text baseline, the profiles and
    the detection questions often name the same LLM)."""
    from .detection import resolve_llm

    loaded = {}

    def resolve(choice: str):
        if choice not in loaded:
            loaded[choice] = resolve_llm(choice, model, processor)
        return loaded[choice]

    return resolve


def text_baseline_row(llm_choice, eval_cfg, rows, references, languages):
    """(row name, metrics) of the text-only LLM baseline, or None when `evaluate.text_baseline` is null.
    `llm_choice`: choice -> (llm, tokenizer, name), e.g. `llm_resolver(model, processor)`."""
    from .caption_metrics import compute_caption_metrics
    from .text_baseline import text_baseline_captions

    if not eval_cfg["text_baseline"]:
        return None
    llm, tokenizer, name = llm_choice(eval_cfg["text_baseline"])
    # a plain LLM has no caption length of its own: the one ECMC's captions get by default
    captions = text_baseline_captions(llm, tokenizer, rows["transcript"], languages,
                                      eval_cfg["max_new_tokens"] or MAX_NEW_TOKENS["caption"], eval_cfg["batch_size"])
    return f"Text-only LLM ({name}, transcript only)", compute_caption_metrics(captions, references, language=languages)


def detection_section(llm, tokenizer, name, rows, captions, default_language):
    """Tables 3-4 layout on this split's subjects: `llm` (the one `evaluate.llm` names) writes the
    profiles and answers depression / anxiety from the transcript alone, with a profile of ECMC's
    captions, and with a profile of the reference captions; each subject in its own language (its
    rows', else `default_language`)."""
    from modeling_ecmc.vocabulary_ecmc import reference_caption

    from .detection import detection_markdown, detection_table, run_detection, subjects_from_rows, write_profiles

    subjects = subjects_from_rows(rows, captions, default_language)
    references = subjects_from_rows(rows, [reference_caption(r) for r in rows], default_language)
    languages = {s["subject_id"]: s["language"] for s in subjects}
    profiles = {
        "ECMC profile": write_profiles(llm, tokenizer, {s["subject_id"]: s["captions"] for s in subjects}, languages),
        "Reference-caption profile": write_profiles(llm, tokenizer, {s["subject_id"]: s["captions"] for s in references},
                                                    languages),
    }
    # a 135M decoder seldom answers in one word: its yes-vs-no likelihood is reported beside the parsed answers
    table = detection_table({f"{name}, {mode} answer": run_detection(llm, tokenizer, subjects, profiles,
                                                                   language=default_language, answer_mode=mode)
                             for mode in ("generate", "likelihood")})
    return table, profiles["ECMC profile"], detection_markdown(table)


def most_frequent_caption(train_rows) -> str:
    """The baseline: the most frequent training emotion caption + the most frequent cognition caption."""
    from modeling_ecmc.vocabulary_ecmc import format_caption

    emotion = collections.Counter(train_rows["emotion_caption"]).most_common(1)[0][0]
    cognition = collections.Counter(train_rows["cognition_caption"]).most_common(1)[0][0]
    return format_caption(emotion, cognition)


def plot_loss_curves(output_dir: Path, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, stage in zip(axes, (1, 2)):
        log = output_dir / f"stage{stage}" / "log_history.json"
        if not log.is_file():
            ax.set_title(f"stage {stage}: no log")
            continue
        history = json.loads(log.read_text())
        for key, label in (("loss", "train"), ("eval_loss", "validation")):
            points = [(h["step"], h[key]) for h in history if key in h]
            if points:
                ax.plot(*zip(*points), marker="." if key == "eval_loss" else None, label=label)
        ax.set_title(f"stage {stage}: " + ("L_emo + L_cog" if stage == 1 else "caption cross-entropy"))
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    from modeling_ecmc.atomic_io import save_figure

    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return str(path)


def evaluate(checkpoint, cfg, output=None, split="test", profile_subjects=1):
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.atomic_io import write_text
    from processing_ecmc.dataset_io import load_dataset_dict
    from processing_ecmc.cached_dataset import cached_dataset
    from modeling_ecmc.processing_ecmc import ECMCProcessor
    from modeling_ecmc.vocabulary_ecmc import reference_caption

    from .caption_metrics import compute_caption_metrics
    from .channel_readback import channel_readback, channel_table_markdown, synth_cues
    from .detection import write_profiles
    from .label_readback import readback_scores
    from .report import (caption_table_markdown, examples_markdown, knn_table_markdown, readback_table_markdown,
                         write_report)
    from .stage_probes import caption_scores, collect_stages, majority_scores, probe_stages, probe_table_markdown, probe_targets
    from .statistics import group_statistics_from_rows, knn_accuracy, label_names, plot_group_statistics, plot_tsne

    output = Path(output or Path(cfg["output_dir"]) / "evaluation")
    output.mkdir(parents=True, exist_ok=True)
    eval_cfg = cfg["evaluate"]
    dsd = load_dataset_dict(cfg["data"]["dataset"])
    if split not in dsd or len(dsd[split]) == 0:
        raise ValueError(f"data set {cfg['data']['dataset']} has no rows in split {split!r}")
    model = ECMCForConditionalGeneration.from_pretrained(checkpoint)
    # our installed processor code, never the code inside the checkpoint (SECURITY.md)
    processor = ECMCProcessor.from_pretrained(checkpoint, trust_remote_code=False)
    rows = dsd[split]
    languages = [lang or processor.language for lang in rows["language"]]  # each row's own
    dataset = cached_dataset(model, processor, rows, cfg["data"]["cache_dir"], cfg["data"]["cache_batch_size"])
    with timed(f"captions of {len(rows)} utterances"):
        captions, h_e, h_c = caption_split(model, processor, dataset, eval_cfg["batch_size"], eval_cfg["max_new_tokens"],
                                           languages, rows["transcript"])
    references = [reference_caption(r) for r in rows]
    write_text(output / "captions.jsonl", "".join(  # sensitive: a file, never the log
        json.dumps({"utterance_id": row["utterance_id"], "caption": caption}, ensure_ascii=False) + "\n"
        for row, caption in zip(rows, captions)))

    baseline = most_frequent_caption(dsd["train"])
    with timed("caption metrics"):
        metrics = {
            "ECMC (ours)": compute_caption_metrics(captions, references, language=languages),
            "Most frequent training caption": compute_caption_metrics([baseline] * len(rows), references,
                                                                      language=languages),
        }
    train = dsd["train"]
    readback = readback_scores(captions, rows["emotion_label"], rows["cognition_labels"], languages,
                               train["emotion_label"], train["cognition_labels"])
    cues = synth_cues(cfg["data"], rows, train) if set(languages) == {"en"} else None  # English phrase banks
    channels = channel_readback(captions, [cues[u] for u in rows["utterance_id"]], references) if cues else None
    with timed("stage probes"):
        train_stages = collect_stages(model, cached_dataset(model, processor, train, cfg["data"]["cache_dir"],
                                                            cfg["data"]["cache_batch_size"]))
        stages = collect_stages(model, dataset)
        train_targets, targets = probe_targets(train, cues), probe_targets(rows, cues)
        probes = {**probe_stages(train_stages, stages, train_targets, targets),
                  "captions (read back)": caption_scores(readback, channels, len(rows)),
                  "majority class of training": majority_scores(train_targets, targets)}
    knn = {"h_e / emotion": knn_accuracy(h_e, rows["emotion_label"], train_embeddings=train_stages["h_e"],
                                         train_labels=train["emotion_label"]),
           "h_c / cognition (exact match)": knn_accuracy(h_c, rows["cognition_labels"],
                                                         train_embeddings=train_stages["h_c"],
                                                         train_labels=train["cognition_labels"])}
    llm_choice = llm_resolver(model, processor)
    with timed("text-only LLM baseline"):
        text_row = text_baseline_row(llm_choice, eval_cfg, rows, references, languages)
    if text_row:
        metrics[text_row[0]] = text_row[1]
    figures = [
        ("Training loss curves", plot_loss_curves(Path(cfg["output_dir"]), output / "loss_curves.png")),
        ("t-SNE of h_e by emotion", plot_tsne(h_e, label_names(rows["emotion_label"], "emotion"), output / "tsne_h_e.png", "h_e")),
        ("t-SNE of h_c by cognition", plot_tsne(h_c, label_names(rows["cognition_labels"], "cognition"), output / "tsne_h_c.png", "h_c")),
        ("Figure 4 from predicted captions", plot_group_statistics(
            group_statistics_from_rows(rows, captions, languages), output / "figure4_predicted.png")),
    ]
    detection = None
    if eval_cfg["detection"]:  # writes every subject's profile on the way
        with timed("profiles and detection"):
            detection, profiles, detection_md = detection_section(*llm_choice(eval_cfg["llm"]), rows, captions,
                                                                  processor.language)
    else:
        by_subject, subject_language = collections.defaultdict(list), {}
        for row, caption, lang in zip(rows, captions, languages):
            by_subject[row["subject_id"]].append(caption)
            subject_language.setdefault(row["subject_id"], lang)  # its first row's
        chosen = dict(list(by_subject.items())[:profile_subjects])
        with timed(f"{len(chosen)} profile(s)"):
            profiles = write_profiles(*llm_choice(eval_cfg["llm"])[:2], chosen, subject_language) if chosen else {}
    write_text(output / "profiles.json", json.dumps(profiles, ensure_ascii=False, indent=1))

    sections = [
        ("Emotion captions (Table 1 layout)", caption_table_markdown(metrics, "emotion")),
        ("Cognition captions (Table 2 layout)", caption_table_markdown(metrics, "cognition")),
        ("Whole captions", caption_table_markdown(metrics, "caption")),
        ("Labels read back from generated captions", readback_table_markdown({"ECMC (ours)": readback})),
        ("k-NN accuracy of the BridgeNet embeddings (fitted on the training split)", knn_table_markdown(knn)),
        *([("What the captions say about each channel (ECMC-Synth's cues)", channel_table_markdown(channels))]
          if channels else []),
        ("Linear probes at every stage (fitted on the training split; percent)", probe_table_markdown(probes)),
        *([("Depression and anxiety detection (Tables 3-4 layout)", detection_md)] if detection else []),
        (f"Example captions (the first {min(eval_cfg['num_examples'], len(rows))} of the split)",
         examples_markdown(*(values[:eval_cfg["num_examples"]] for values in (rows["utterance_id"], captions, references)))),
        ("Files", f"- generated captions: `captions.jsonl`\n- profiles of {len(profiles)} subject(s): `profiles.json`"),
    ]
    data = {"checkpoint": str(checkpoint), "split": split, "n": len(rows), "metrics": metrics,
            "readback": readback, "channels": channels, "probes": probes, "knn": knn, "detection": detection}
    write_report(output, f"ECMC evaluation: {split} split ({len(rows)} utterances)", sections, figures, data,
                 notes=["Synthetic data (ECMC-Synth). Not a diagnostic device."])
    return output, data


def main(argv=None):
    from training_ecmc.config import load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a trained ECMC checkpoint folder")
    parser.add_argument("--config", type=Path, help="the training config (data set, cache, evaluate settings)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--split", default=None, help="split to evaluate (default: evaluate.split)")
    parser.add_argument("--output", type=Path, help="report folder (default: <output_dir>/evaluation)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = load_config(args.config, args.set)
    output, data = evaluate(args.checkpoint, cfg, args.output, args.split or cfg["evaluate"]["split"],
                            cfg["evaluate"]["profile_subjects"])
    ours = data["metrics"]["ECMC (ours)"]["caption"]
    print(f"[ecmc] evaluation of {data['n']} {data['split']} utterances: CIDEr-D {ours['CIDEr']:.3f}, "
          f"F_BERT {ours['F_BERT']:.3f}, emotion read-back {data['readback']['emotion']['accuracy']:.3f}; "
          f"report written to {(output / 'report.md').resolve()}")


if __name__ == "__main__":
    main()
