"""`ecmc`: one command for the ECMC workflow. Each verb hands over to the module that implements it.

    ecmc data build --manifest M --output DIR             data sets: build | mmda (processing_ecmc.data_cli) | push
    ecmc init --config configs/paper.yaml                 the paper preset assembled from model.components
    ecmc features --config configs/offline_demo.yaml      the feature cache, built as train.py builds it
    ecmc train --config configs/offline_demo.yaml         both training stages (training_ecmc, as train.py)
    ecmc evaluate --checkpoint C --config CFG             evaluation report (evaluation_ecmc.run_evaluation)
    ecmc segment s01.mp4 --output T                       the patient's question-answer turns of one interview
                                                          (transcribed, or --transcript s01.vtt; or a folder)
    ecmc profile-session s01.mp4 --checkpoint C --output DIR   turns, captions, profile (and screening)
    ecmc caption --checkpoint C clip.mp4 --transcript T   captions with the ecmc-captioning pipeline
    ecmc profile --checkpoint C captions.jsonl            one person's emotion-cognition profile (Eq. 4)
    ecmc push --checkpoint C --repo-id me/ecmc            upload to the Hub, private by default (hub_card.push)
    ecmc demo --checkpoint C                              the Gradio demo on 127.0.0.1 (demo/app.py)
    ecmc push-space --checkpoint me/ecmc --repo-id me/sp  the demo as a Space, private by default (demo.push_space)

Run `ecmc COMMAND --help` for a command's options. Captions and profiles go to your terminal or to
the --output file, never to a log.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

class CLIError(Exception):
    """A problem to report in one line (exit status 1)."""


def _delegate(main, verb: str, argv: list):
    """Run another module's `main(argv)` with `ecmc VERB` as its program name in help and errors."""
    saved, sys.argv[0] = sys.argv[0], f"ecmc {verb}"
    try:
        return main(argv)
    finally:
        sys.argv[0] = saved


def _load_pipeline(checkpoint: Path, **kwargs):
    from modeling_ecmc.pipeline_ecmc import load_pipeline

    if not (checkpoint / "config.json").is_file():
        raise CLIError(f"{checkpoint}: not a checkpoint folder (no config.json)")
    return load_pipeline(checkpoint, **kwargs)


# ----- verbs implemented here (thin: the work is in the pipeline and training_ecmc) ---------------
def init(argv):
    parser = argparse.ArgumentParser(prog="ecmc init", description=(
        "Assemble the initial checkpoint of a preset built from pretrained components (model.preset: "
        "paper, parts in model.components: hub ids or local folders) into <output_dir>/init, which "
        "train.py then starts from. train.py does this itself when the folder is missing; run it "
        "alone to check the components and download them once, before launching several processes."))
    parser.add_argument("--config", type=Path, required=True, help="YAML under configs/, e.g. configs/paper.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    args = parser.parse_args(argv)
    import logging

    from training_ecmc.config import ConfigError, load_config
    from training_ecmc.run import initial_checkpoint

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.set)
        if cfg["model"]["checkpoint"] or cfg["model"]["preset"] != "paper":
            raise CLIError("nothing to assemble: the config starts from model.checkpoint or the offline preset "
                           "(built by train.py itself); set model.preset: paper and model.components")
        folder = initial_checkpoint(cfg)
    except ConfigError as error:
        raise CLIError(str(error)) from None
    print(f"[ecmc] initial checkpoint written to {folder.resolve()}")


def features(argv):
    parser = argparse.ArgumentParser(prog="ecmc features", description=(
        "Build (or complete) the feature cache of a config's data set: the data set is built first if "
        "the config says so, the model is the config's (or --checkpoint's), and the frozen encoders run "
        "once per utterance (training_ecmc.run's prepare_data, build_model and cached_splits). Reruns reuse what "
        "is cached and valid."))
    parser.add_argument("--config", type=Path, help="YAML under configs/ (defaults: training_ecmc/config.py)")
    parser.add_argument("--checkpoint", type=Path, help="take the encoders from this checkpoint (model.checkpoint)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    args = parser.parse_args(argv)
    import logging

    from training_ecmc.config import load_config
    from training_ecmc.run import build_model, cached_splits, prepare_data

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = args.set + ([f"model.checkpoint={args.checkpoint}"] if args.checkpoint else [])
    cfg = load_config(args.config, overrides)
    dsd = prepare_data(cfg)
    model, processor = build_model(cfg)
    splits = cached_splits(cfg, model, processor, dsd)
    sizes = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
    print(f"[ecmc] feature cache ({sizes} utterances) written to {Path(cfg['data']['cache_dir']).resolve()}")


def _caption_inputs(args) -> list[dict]:
    from processing_ecmc.session import pipeline_input

    if args.inputs:
        inputs = []
        for n, line in enumerate(args.inputs.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    inputs.append(pipeline_input(json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise CLIError(f"{args.inputs}, line {n}: not JSON ({exc.msg})") from None
        return inputs
    transcripts = args.transcript or []
    if not args.media and len(transcripts) == 1:  # text only
        return [{"transcript": transcripts[0]}]
    if not args.media:
        raise CLIError("nothing to caption: give media files, one --transcript, or --inputs FILE.jsonl")
    if transcripts and len(transcripts) != len(args.media):
        raise CLIError(f"{len(transcripts)} --transcript for {len(args.media)} files: give one per file, in order")
    key = "audio" if args.audio_only else "video"
    inputs = []
    for i, path in enumerate(args.media):
        item = {key: str(path), "start": args.start, "end": args.end}
        if transcripts:
            item["transcript"] = transcripts[i]
        inputs.append({k: v for k, v in item.items() if v is not None})
    return inputs


def caption(argv):
    parser = argparse.ArgumentParser(prog="ecmc caption", description=(
        "Caption utterances with a checkpoint's ecmc-captioning pipeline (ECMCProcessor -> generate -> "
        "post_process_caption, greedy). Prints each caption, or writes one JSON line per utterance to "
        "--output (written as they are done, so an error keeps the finished ones)."),
        epilog="example: ecmc caption --checkpoint outputs/demo/checkpoint session.mp4 --start 3.2 --end 8.9 "
               "--transcript \"I can't remember the date.\"")
    parser.add_argument("media", nargs="*", type=Path, help="video files (the audio is their own track)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="a saved ECMC checkpoint folder")
    parser.add_argument("--transcript", action="append", help="what was said, one per file, in order")
    parser.add_argument("--start", type=float, help="segment start in seconds (every file)")
    parser.add_argument("--end", type=float, help="segment end in seconds (every file)")
    parser.add_argument("--audio-only", action="store_true", help="the files are audio recordings (no video)")
    parser.add_argument("--inputs", type=Path, help="JSONL of utterances: {video, audio, start, end, transcript, language}, "
                                                    "or manifest rows / `ecmc segment` output (video_path, audio_path, ...)")
    parser.add_argument("--language", choices=["en", "zh"], help="caption language (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="new tokens per caption (default: the checkpoint's generation_config, 128)")
    parser.add_argument("--output", type=Path, help="JSONL file for the captions instead of the terminal")
    args = parser.parse_args(argv)
    inputs = _caption_inputs(args)
    pipe = _load_pipeline(args.checkpoint)
    options = {**({"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}),
               **({"language": args.language} if args.language else {})}
    results = _write_captions(pipe, inputs, args.output, args.batch_size, options)
    if args.output:
        print(f"[ecmc] {len(results)} caption(s) written to {args.output.resolve()}")


def _where(item: dict) -> dict:
    """The media and times of a pipeline input: what a captions.jsonl line says it describes."""
    return {k: item[k] for k in ("video", "audio", "start", "end") if k in item}


def _write_captions(pipe, inputs: list[dict], output: Path | None, batch_size: int, options: dict) -> list[dict]:
    """Caption `inputs` in batches (a progress bar); one JSON line each to `output` (appearing whole,
    once every caption is written), else printed. Returns the results."""
    from tqdm.auto import tqdm

    from modeling_ecmc.atomic_io import atomic_file

    results = []
    stream = pipe((x for x in inputs), batch_size=batch_size, **options)  # a generator streams results
    with contextlib.ExitStack() as stack:
        out = None
        if output:
            out = stack.enter_context(open(stack.enter_context(atomic_file(output)), "w", encoding="utf-8"))
        for item, result in tqdm(zip(inputs, stream), total=len(inputs), desc="Captioning", unit="utt",
                                 disable=len(inputs) < 2):
            results.append(result)
            where = _where(item)
            if out:
                out.write(json.dumps({**where, **result}, ensure_ascii=False) + "\n")
            else:
                print(f"# {' '.join(f'{k}={v}' for k, v in where.items()) or 'transcript only'}\n{result['caption']}\n")
    return results


def _segment_arguments(parser):
    from modeling_ecmc.vocabulary_ecmc import LANGUAGES, MIN_UTTERANCE_SECONDS

    parser.add_argument("session", type=Path, help="the interview recording: a video with audio, or an audio file "
                                                   "(`ecmc segment`: or a folder of recordings)")
    parser.add_argument("--transcript", type=Path, help="its timed transcript: .srt, .vtt or .json segments, with "
                                                        "speakers (default: transcribed, speakers found by voice); "
                                                        "for a folder of recordings, a folder of transcripts named "
                                                        "like them (recordings without one are transcribed)")
    parser.add_argument("--patient", help="the patient's speaker label (default: the speaker who answers the questions; "
                                          "found speakers are 'speaker 1', 'speaker 2', ...)")
    parser.add_argument("--asr-model", help="without --transcript: a faster-whisper size, Hub id or CTranslate2 "
                                            "folder (default: the bundled Whisper tiny.en)")
    parser.add_argument("--speakers", type=int, default=2, help="without --transcript: how many voices (default 2)")
    parser.add_argument("--video", type=Path, help="a separate video of the session when SESSION is its audio")
    parser.add_argument("--subject", help="subject_id of the rows (default: the recording's file name)")
    parser.add_argument("--min-seconds", type=float, default=MIN_UTTERANCE_SECONDS,
                        help="shorter answers are dropped (default: the paper's 2 s)")
    parser.add_argument("--language", choices=LANGUAGES, default="en")


def segment(argv):
    parser = argparse.ArgumentParser(prog="ecmc segment", description=(
        "One interview recording (and its timed transcript, or it is transcribed and its speakers found by voice: "
        "the `interview` extra) -> the patient's question-answer turns, one JSON "
        "line each (start, end, speaker, transcript, question and the manifest's media columns), after the "
        "paper's filter (under 2 s, greetings, personal-information questions; processing_ecmc/turns.py). "
        "Dropped turns are counted by reason; texts are never printed."),
        epilog="example: ecmc segment s01.mp4 --transcript s01.vtt --output s01.turns.jsonl && "
               "ecmc caption --checkpoint outputs/demo/checkpoint --inputs s01.turns.jsonl")
    _segment_arguments(parser)
    parser.add_argument("--output", type=Path, required=True, help="the turns JSONL to write")
    args = parser.parse_args(argv)
    from processing_ecmc.session import drop_summary, segment_folder, segment_session, write_turns

    options = dict(patient=args.patient, min_seconds=args.min_seconds, language=args.language,
                   asr_model=args.asr_model, num_speakers=args.speakers)
    if args.session.is_dir():  # a folder of recordings: one turns file for all (e.g. to annotate a data set)
        if args.subject or args.video:
            raise CLIError("--subject and --video belong to one recording; a folder's rows take each recording's name")
        rows = []
        for recording, kept, dropped, patient in segment_folder(args.session, args.transcript, **options):
            print(f"[ecmc] {recording.name}: {len(kept)} turn(s) of {patient} kept, {drop_summary(dropped)}")
            rows += kept
    else:
        rows, dropped, patient = segment_session(args.session, args.transcript, subject_id=args.subject, video=args.video,
                                                 **options)
        print(f"[ecmc] {len(rows)} turn(s) of {patient} kept, {drop_summary(dropped)}")
    if not rows:
        raise CLIError(f"{args.transcript or args.session}: no turn of the patient is left; nothing written")
    write_turns(rows, args.output)
    print(f"[ecmc] {len(rows)} turn(s) written to {args.output.resolve()}")


def profile_session(argv):
    parser = argparse.ArgumentParser(prog="ecmc profile-session", description=(
        "One interview recording -> its patient turns (as `ecmc segment`) -> a caption per turn (in batches) "
        "-> the emotion-cognition profile (Eq. 4), and with --detection the depression / anxiety screening "
        "answers (Eq. 5; not a diagnosis). Writes turns.jsonl, captions.jsonl, profile.txt (and "
        "screening.json) into --output."),
        epilog="example: ecmc profile-session s01.mp4 --transcript s01.vtt --checkpoint outputs/demo/checkpoint "
               "--output outputs/s01")
    _segment_arguments(parser)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a saved ECMC checkpoint folder")
    parser.add_argument("--output", type=Path, required=True, help="folder for the results")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--profile-llm", default="auto", help="LLM of the profile and the screening: auto (default), "
                                                              "decoder, default (SmolLM2) or a causal LM id / folder")
    parser.add_argument("--detection", action="store_true", help="also answer the depression / anxiety screening")
    args = parser.parse_args(argv)
    from evaluation_ecmc.detection import attach_profile_llm
    from evaluation_ecmc.session_profile import profile_session as run
    from modeling_ecmc.atomic_io import write_text
    from processing_ecmc.session import pipeline_input, write_turns

    pipe = attach_profile_llm(_load_pipeline(args.checkpoint), args.profile_llm)
    result = run(pipe, args.session, args.transcript, detection=args.detection, batch_size=args.batch_size,
                 language=args.language, patient=args.patient, subject_id=args.subject, min_seconds=args.min_seconds,
                 asr_model=args.asr_model, num_speakers=args.speakers, video=args.video)
    print(f"[ecmc] {result.summary}")
    args.output.mkdir(parents=True, exist_ok=True)  # only now: a failed run leaves nothing behind
    write_turns(result.turns, args.output / "turns.jsonl")
    where = [_where(pipeline_input(row)) for row in result.turns]
    write_text(args.output / "captions.jsonl", "".join(json.dumps({**w, **c}, ensure_ascii=False) + "\n"
                                                       for w, c in zip(where, result.captions)))
    write_text(args.output / "profile.txt", result.profile + "\n")
    if result.screening is not None:
        write_text(args.output / "screening.json", json.dumps(result.screening, ensure_ascii=False, indent=1) + "\n")
    print(f"[ecmc] turns.jsonl, captions.jsonl, profile.txt{', screening.json' if args.detection else ''} "
          f"written to {args.output.resolve()}")


def profile(argv):
    parser = argparse.ArgumentParser(prog="ecmc profile", description=(
        "Write one person's emotion-cognition profile (Eq. 4) from the captions of their utterances, "
        "with the checkpoint's own frozen decoder. Captions come from JSONL files with a 'caption' "
        "field per line (what `ecmc caption --output` and the evaluation's captions.jsonl hold) and/or "
        "--caption."))
    parser.add_argument("captions", nargs="*", type=Path, help="JSONL files of one person's captions")
    parser.add_argument("--checkpoint", type=Path, required=True, help="a saved ECMC checkpoint folder")
    parser.add_argument("--caption", action="append", default=[], help="a caption (repeatable)")
    parser.add_argument("--language", choices=["en", "zh"], help="profile language (default: the checkpoint's)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="new tokens of the profile (default 256)")
    parser.add_argument("--output", type=Path, help="text file for the profile instead of the terminal")
    args = parser.parse_args(argv)
    captions = []
    for path in args.captions:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    captions.append(json.loads(line)["caption"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise CLIError(f"{path}, line {n}: expected a JSON object with a 'caption' field") from None
    captions += args.caption
    if not captions:
        raise CLIError("no captions: give JSONL files or --caption")
    pipe = _load_pipeline(args.checkpoint)
    request = {"captions": captions, **({"language": args.language} if args.language else {})}
    text = pipe(request, **({"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}))["profile"]
    if args.output:
        from modeling_ecmc.atomic_io import write_text

        write_text(args.output, text + "\n")
        print(f"[ecmc] profile of {len(captions)} caption(s) written to {args.output.resolve()}")
    else:
        print(text)


# ----- verbs handed to their modules ------------------------------------------------------------
def data(argv):
    if argv[:1] == ["push"]:  # the Hub upload (with its card) is hub_card's, a layer above the data sets
        from hub_card.push_dataset import main as push_dataset

        return push_dataset(argv[1:], prog="ecmc data push")
    from processing_ecmc.data_cli import main

    return _delegate(main, "data", argv)


def _readback(processor, cfg):
    """The read-back scorer factory of `stage2.select_by: readback` (imported only when used)."""
    from evaluation_ecmc.selection import readback_scorer

    return readback_scorer(processor, cfg)


def train(argv):
    from training_ecmc.cli import main

    return _delegate(lambda args: main(args, readback=_readback), "train", argv)


def evaluate(argv):
    from evaluation_ecmc.run_evaluation import main

    return _delegate(main, "evaluate", argv)


def push(argv):
    from hub_card.push import main

    return _delegate(main, "push", argv)


def demo(argv):
    from demo.app import main

    return _delegate(main, "demo", argv)


def push_space(argv):
    from demo.push_space import main

    return _delegate(main, "push-space", argv)


COMMANDS = {  # verb -> (runner, one-line help)
    "data": (data, "build a data set from a manifest, import MMDA, or push one to the Hub (private by default)"),
    "init": (init, "assemble a preset's initial checkpoint from pretrained components (model.components)"),
    "features": (features, "run the frozen encoders once per utterance and store the feature cache"),
    "train": (train, "train both stages (or one) from a YAML config, as train.py does (training_ecmc)"),
    "evaluate": (evaluate, "caption a split, score it against the baseline, write report.md / report.json"),
    "segment": (segment, "cut one interview recording into the patient's question-answer turns (timed transcript)"),
    "profile-session": (profile_session, "one interview recording -> turns, captions, the profile (and screening)"),
    "caption": (caption, "caption utterances (video / audio files, transcripts) with a checkpoint's pipeline"),
    "profile": (profile, "write one person's emotion-cognition profile from their captions (Eq. 4)"),
    "push": (push, "upload a checkpoint with its card to the Hub (private unless --public; --dry-run)"),
    "demo": (demo, "start the Gradio demo (binds to 127.0.0.1)"),
    "push-space": (push_space, "upload the demo as a Hugging Face Space in one commit (private unless --public; --dry-run)"),
}
INPUT_ERRORS = {"segment": (ValueError, OSError), "profile-session": (ValueError, OSError), "caption": (ValueError, OSError), "profile": (ValueError, OSError), "features": (ValueError,)}


def build_parser() -> argparse.ArgumentParser:
    head, examples = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(prog="ecmc", description=head, epilog="examples:\n" + examples,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for verb, (_, text) in COMMANDS.items():
        sub.add_parser(verb, help=text)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb not in COMMANDS:
        parser.error(f"unknown command {verb!r}; choose one of: {', '.join(COMMANDS)}")
    try:
        COMMANDS[verb][0](rest)
    except (CLIError, *INPUT_ERRORS.get(verb, ())) as exc:  # bad files and inputs: one clear line, no traceback
        print(f"ecmc {verb}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
