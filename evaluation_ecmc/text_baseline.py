"""Text-only LLM baselines (the comparison rows of Tables 1-2): any causal LM, prompted with the
transcript alone (the paper's mental-health LLM baselines see no audio or video), writes the caption;
the same metrics as ECMC score it.

    python -m evaluation_ecmc.text_baseline --dataset outputs/ecmc-synth-dataset --split test \\
        [--model ID_OR_PATH [--gguf-file FILE]] --output outputs/text-baseline

Default model: SmolLM2-135M-Instruct (offline, the weights the offline default's decoder starts
from). `run_evaluation` adds this row beside ECMC with the LLM `evaluate.text_baseline` names:
`decoder` (the checkpoint's own LLM, without the BridgeNet), `default` (SmolLM2 as shipped; the
demo's choice, since its stage 2 merges a LoRA into the decoder) or a hub id / folder. The prompt is
`prompts_ecmc`'s "text_baseline"; the answer is split into its emotion and cognition parts with the
caption parser, so a model that ignores the format scores what it wrote as the emotion part.
Captions go to `captions.jsonl`, never to the log.
"""

import argparse
import json
import logging
from pathlib import Path

from modeling_ecmc.prompts_ecmc import chat_prompt, get_prompt
from modeling_ecmc.vocabulary_ecmc import DEFAULT_LANGUAGE, MAX_NEW_TOKENS, format_caption, reference_caption, split_caption

from .caption_tokenization import per_row_languages
from .detection import generate_texts, load_causal_lm

logger = logging.getLogger(__name__)


def text_baseline_captions(model, tokenizer, transcripts, language=DEFAULT_LANGUAGE,
                           max_new_tokens: int = MAX_NEW_TOKENS["caption"], batch_size: int = 8) -> list[str]:
    """One caption per transcript, in the ECMC caption format; `language`: one for every transcript
    or a list of one per transcript (each prompt in its own)."""
    transcripts = list(transcripts)
    prompts = [chat_prompt(tokenizer, get_prompt("text_baseline", lang, transcript=t))
               for t, lang in zip(transcripts, per_row_languages(language, len(transcripts)))]
    texts = generate_texts(model, tokenizer, prompts, max_new_tokens, batch_size)
    return [format_caption(**split_caption(text)) for text in texts]


def run_text_baseline(dataset, split: str = "test", model_id=None, gguf_file=None, output=None,
                      max_new_tokens: int = MAX_NEW_TOKENS["caption"], batch_size: int = 8) -> dict:
    """Caption `split` of a saved DatasetDict with a text-only LLM and score it; writes captions.jsonl,
    metrics.json and metrics.md under `output` when given. Returns the metrics."""
    from processing_ecmc.dataset_io import load_dataset_dict

    from .caption_metrics import compute_caption_metrics
    from .report import caption_table_markdown

    rows = load_dataset_dict(dataset)[split]
    if len(rows) == 0:
        raise ValueError(f"data set {dataset} has no rows in split {split!r}")
    languages = [lang or DEFAULT_LANGUAGE for lang in rows["language"]]  # each row's own
    model, tokenizer = load_causal_lm(model_id, gguf_file)
    captions = text_baseline_captions(model, tokenizer, rows["transcript"], languages, max_new_tokens, batch_size)
    references = [reference_caption(r) for r in rows]
    metrics = compute_caption_metrics(captions, references, language=languages)
    if output:
        from modeling_ecmc.atomic_io import write_json, write_text

        output = Path(output)
        output.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"utterance_id": u, "caption": c}, ensure_ascii=False) for u, c in zip(rows["utterance_id"], captions)]
        write_text(output / "captions.jsonl", "\n".join(lines) + "\n")
        write_json(output / "metrics.json", metrics)
        name = f"Text-only LLM ({model_id or 'SmolLM2-135M-Instruct'})"
        tables = [f"## {part}\n\n{caption_table_markdown({name: metrics}, part)}" for part in ("emotion", "cognition", "caption")]
        write_text(output / "metrics.md", "\n\n".join(tables) + "\n")
    return metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("outputs/ecmc-synth-dataset"), help="a saved DatasetDict")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="causal LM hub id or local folder (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--gguf-file", default=None, help="GGUF file inside --model, if it is one")
    parser.add_argument("--output", type=Path, default=Path("outputs/text-baseline"))
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS["caption"])
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_text_baseline(args.dataset, args.split, args.model, args.gguf_file, args.output, args.max_new_tokens, args.batch_size)
    print(f"[ecmc] text-only baseline captions and metrics written to {args.output.resolve()}")


if __name__ == "__main__":
    main()
