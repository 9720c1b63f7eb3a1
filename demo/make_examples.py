"""Cut the demo's example clips from ECMC-Synth (provenance of `demo/examples/`; run it only to remake them).

    python -m demo.make_examples [--synth outputs/ecmc-synth] [--subject s005 --utterances s005_u01 s005_u03 s005_u04]

The clips are committed (about 130 KB) rather than generated at start-up, so a Space needs neither
espeak-ng nor a minute of synthesis before it answers. They are utterances of one ECMC-Synth subject
(demo preset, seed 0: the data `make demo` builds; built here if missing), re-encoded as they were
made (96x96 H.264, 16 kHz mono AAC). `examples.json` holds their transcripts and reference labels;
`synth_groups.json` the Figure 4 statistics of the whole ECMC-Synth demo data from its reference
labels, drawn beside a person's profile for comparison.
"""

import argparse
import json
import subprocess
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def cut_clip(session: Path, start: float, end: float, out: Path) -> None:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
           "-ss", f"{start:.3f}", "-i", str(session), "-t", f"{end - start:.3f}",
           "-c:v", "libx264", "-preset", "medium", "-crf", "25", "-pix_fmt", "yuv420p", "-bf", "0",
           "-c:a", "aac", "-b:a", "48k", "-ar", "16000", "-ac", "1", "-map_metadata", "-1",
           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", str(out)]
    subprocess.run(cmd, check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", type=Path, default=Path("outputs/ecmc-synth"), help="ECMC-Synth demo build")
    parser.add_argument("--subject", default="s005")
    parser.add_argument("--utterances", nargs="+", default=["s005_u01", "s005_u03", "s005_u04"])
    parser.add_argument("--output", type=Path, default=EXAMPLES_DIR)
    args = parser.parse_args(argv)

    from evaluation_ecmc.statistics import group_statistics_from_rows
    from processing_ecmc.synth import generate_synth

    manifest = generate_synth(args.synth, preset="demo", seed=0)  # reuses a complete build
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {r["utterance_id"]: r for r in rows}
    args.output.mkdir(parents=True, exist_ok=True)
    examples = []
    for uid in args.utterances:
        row = by_id[uid]
        if row["subject_id"] != args.subject:
            raise SystemExit(f"{uid} is not an utterance of {args.subject}")
        name = f"{uid}.mp4"
        cut_clip(manifest.parent / row["video_path"], row["start"], row["end"], args.output / name)
        examples.append({"file": name, "transcript": row["transcript"], "emotion_label": row["emotion_label"],
                         "cognition_labels": row["cognition_labels"], "subject_id": row["subject_id"],
                         "depression": row["depression"], "anxiety": row["anxiety"]})
    (args.output / "examples.json").write_text(json.dumps(examples, indent=1) + "\n", encoding="utf-8")
    stats = group_statistics_from_rows(rows)
    reference = {"source": "ECMC-Synth demo preset, seed 0, reference labels",
                 "categories": stats["categories"], "groups": stats["groups"]}
    (args.output / "synth_groups.json").write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in args.output.glob("*.mp4"))
    print(f"[ecmc] {len(examples)} example clips ({size / 1024:.0f} KB) written to {args.output}")


if __name__ == "__main__":
    main()
