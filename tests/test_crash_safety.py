"""Crash safety: `kill -9` in the middle of writing, then a rerun, ends with exactly the outputs of an
uninterrupted run, and whatever was written before the killed run is never damaged.

Each test starts a real subprocess, waits for a file that proves it is mid-way (never a sleep
guess; the subprocess is slowed by a hook only to keep the window open), kills it with SIGKILL,
reruns, and compares bytes (or tensors) with an uninterrupted run. Crash points (5):

1. ECMC-Synth generation, after some subjects' session MP4s are written and before the manifest
   (the whole process group is killed: python, espeak-ng and ffmpeg, as a job scheduler would);
2. `save_dataset` while the splits are being written (in a temporary sibling folder);
3. `save_dataset` between its two renames (the previous data set moved aside, the new one not yet
   in place): the previous data set is restored on the next load;
4. the feature cache, after some utterances' files are written (the rerun reuses them);
5. training: `tests/test_train.py::test_resume_after_kill_reproduces_the_uninterrupted_losses`
   (killed once the first checkpoint is complete; the resumed run has the same steps and losses).

Every write in the package goes through `modeling_ecmc/atomic_io.py` (temporary sibling + fsync +
`os.replace`, folders swapped with two renames); `test_every_write_in_the_package_is_atomic` keeps
it that way.
"""

import ast
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow


def tree(folder: Path) -> dict:
    """{relative path: sha256} of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def start(script: str, env_extra=None) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=f"{ROOT}{os.pathsep}{TESTS}",
               **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def kill_when(process: subprocess.Popen, ready, timeout=120, group=False) -> None:
    """SIGKILL `process` (its whole process group with `group`) as soon as `ready()` is true."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                pytest.fail("the run ended before the crash point: " + process.stderr.read().decode()[-2000:])
            assert time.monotonic() < deadline, "the crash point was never reached"
            time.sleep(0.02)
    finally:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


# ----------------------------------------------------------------------------- 1. ECMC-Synth
def test_kill_during_synth_generation(tmp_path, tiny_synth_dataset):
    reference = tiny_synth_dataset.parent / "synth"  # the uninterrupted tiny build, seed 0
    out = tmp_path / "synth"
    process = start(f"""
        import time
        from processing_ecmc import synth
        build = synth._build_subject
        synth._build_subject = lambda job: (build(job), time.sleep(0.5))[0]  # keep the window open
        synth.generate_synth({str(out)!r}, preset="tiny", seed=0, progress=False)
    """)
    kill_when(process, lambda: (out / "media" / "s002.mp4").exists(), group=True)
    assert not (out / "manifest.jsonl").exists() and not (out / "build_info.json").exists()

    from processing_ecmc.synth import generate_synth

    generate_synth(out, preset="tiny", seed=0, progress=False)
    assert tree(out) == tree(reference)  # no leftover temporaries either


# ----------------------------------------------------------------------------- 2-3. build_dataset + save
SAVE_HOOKS = {
    # after the first split is in the temporary folder
    "while writing the splits": """
        import datasets, time
        save = datasets.Dataset.save_to_disk
        def slow(self, path, *args, **kwargs):
            save(self, path, *args, **kwargs)
            open(MARKER, "w").close()
            time.sleep(60)
        datasets.Dataset.save_to_disk = slow
    """,
    # after the previous data set was renamed aside, before the new one is renamed into place
    "between the two renames": """
        import os, time
        replace = os.replace
        def slow(src, dst):
            replace(src, dst)
            if os.path.realpath(src) == os.path.realpath(TARGET):
                open(MARKER, "w").close()
                time.sleep(60)
        os.replace = slow
    """,
}


@pytest.mark.parametrize("crash_point", SAVE_HOOKS)
def test_kill_during_dataset_save(tmp_path, tiny_synth_dataset, crash_point):
    from processing_ecmc.dataset_build import build_dataset
    from processing_ecmc.dataset_io import load_dataset_dict, save_dataset

    manifest = tiny_synth_dataset.parent / "synth" / "manifest.jsonl"
    target, marker = tmp_path / "dataset", tmp_path / "crash-point-reached"
    previous, _ = build_dataset(manifest, min_duration=1.0)
    previous["train"] = previous["train"].select(range(2))  # an earlier, different build
    save_dataset(previous, target)
    before = tree(target)
    assert before != tree(tiny_synth_dataset)

    process = start(f"""
        MARKER, TARGET = {str(marker)!r}, {str(target)!r}
        {textwrap.indent(textwrap.dedent(SAVE_HOOKS[crash_point]), ' ' * 8).strip()}
        from processing_ecmc.dataset_build import build_dataset
        from processing_ecmc.dataset_io import save_dataset
        dsd, _ = build_dataset({str(manifest)!r}, min_duration=1.0)
        save_dataset(dsd, TARGET)
    """)
    kill_when(process, marker.exists)
    if crash_point == "between the two renames":
        assert not target.exists()  # the moment of the kill: only the aside copy exists
    loaded = load_dataset_dict(target)  # restores the previous data set if it was moved aside
    assert tree(target) == before and {k: len(v) for k, v in loaded.items()} == {k: len(v) for k, v in previous.items()}

    dsd, _ = build_dataset(manifest, min_duration=1.0)  # the rerun
    save_dataset(dsd, target)
    got, want = tree(target), tree(tiny_synth_dataset)
    assert got == want, [k for k in want if got.get(k) != want[k]]  # the fixture is the uninterrupted build
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash-point-reached", "dataset"]  # no temporaries


# ----------------------------------------------------------------------------- 4. feature cache
@contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same as the killed subprocess: bit-identical float results
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_kill_during_feature_caching(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    from modeling_ecmc import ECMCForConditionalGeneration
    from processing_ecmc.dataset_io import load_dataset_dict
    from safetensors import safe_open

    from processing_ecmc.cache_build import build_feature_cache
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    model = ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint).eval()
    processor = ECMCProcessor.from_pretrained(tiny_checkpoint, trust_remote_code=False)
    rows = load_dataset_dict(tiny_synth_dataset)["train"]
    with one_thread():
        reference = build_feature_cache(model, processor, rows, tmp_path / "reference", batch_size=1, progress=False)

    cache = tmp_path / "cache"
    folder = cache / reference.name
    process = start(f"""
        import time, torch
        torch.set_num_threads(1)
        from modeling_ecmc import ECMCForConditionalGeneration
        from processing_ecmc.dataset_io import load_dataset_dict
        from processing_ecmc.cache_build import build_feature_cache
        from modeling_ecmc.processing_ecmc import ECMCProcessor
        model = ECMCForConditionalGeneration.from_pretrained({str(tiny_checkpoint)!r}).eval()
        processor = ECMCProcessor.from_pretrained({str(tiny_checkpoint)!r}, trust_remote_code=False)
        rows = load_dataset_dict({str(tiny_synth_dataset)!r})["train"]
        build_feature_cache(model, processor, rows, {str(cache)!r}, batch_size=1, progress=False,
                            callback=lambda u, s: time.sleep(0.3))
    """)
    kill_when(process, lambda: len(list(folder.glob("*.safetensors"))) >= 3)
    written = len(list(folder.glob("*.safetensors")))
    assert 3 <= written < len(rows)

    statuses = {}
    with one_thread():
        build_feature_cache(model, processor, rows, cache, batch_size=1, progress=False,
                            callback=lambda u, s: statuses.__setitem__(u, s))
    assert sorted(statuses.values()).count("reused") == written  # the killed run's files verified and kept
    # the same files (no temporaries), each with the same metadata and bit-identical tensors. (Not the
    # same bytes: safetensors writes its metadata keys in a per-process hash order.)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in reference.iterdir())
    assert (folder / "cache_info.json").read_bytes() == (reference / "cache_info.json").read_bytes()
    for path in sorted(reference.glob("*.safetensors")):
        with safe_open(str(path), "pt") as want, safe_open(str(folder / path.name), "pt") as got:
            assert got.metadata() == want.metadata()
            assert sorted(got.keys()) == sorted(want.keys())
            assert all(torch.equal(got.get_tensor(k), want.get_tensor(k)) for k in want.keys())


# ----------------------------------------------------------------------------- the audit
WRITE_CALLS = {"write_text", "write_bytes", "savefig", "save_to_disk", "save_file", "save", "dump", "to_csv",
               "to_json", "save_pretrained"}
PACKAGE = ("processing_ecmc", "training_ecmc", "evaluation_ecmc", "modeling_ecmc", "train.py")
# Writes that are atomic by construction or not ours to make atomic, each with its reason.
ALLOWED = {
    ("modeling_ecmc/atomic_io.py", "*"): "the helper itself",
    ("processing_ecmc/synth.py", "open"): "the mixed session WAV in a TemporaryDirectory (ffmpeg then writes the "
                                          "MP4 to a temporary name, renamed when complete)",
    ("evaluation_ecmc/caption_tokenization.py", "open"): "the PTB tokeniser's input in a TemporaryDirectory",
    ("modeling_ecmc/modeling_ecmc.py", "save_pretrained"): "ECMCForConditionalGeneration.save_pretrained itself "
                                                           "(callers write into an atomic_folder)",
    ("processing_ecmc/dataset_io.py", "save_to_disk"): "into atomic_folder's temporary folder",
    ("training_ecmc/trainer.py", "save_pretrained"): "into atomic_folder's temporary folder",
    ("modeling_ecmc/build_offline.py", "save_pretrained"): "into atomic_folder's temporary folder",
    ("evaluation_ecmc/human_eval.py", "open"): "inside atomic_file",
}


def _writes(path: Path):
    """(function or attribute name, line) of every call that writes a file in `path`."""
    tree_ = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree_):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "open":
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                yield "open", node.lineno
        elif name in WRITE_CALLS:
            owner = func.value if isinstance(func, ast.Attribute) else None
            owner_name = getattr(owner, "id", getattr(owner, "attr", ""))
            if name in ("save", "dump") and owner_name not in ("np", "numpy", "torch", "json", "pickle", "yaml"):
                continue
            if name in ("write_text", "write_bytes") and owner is None:
                continue  # atomic_io.write_text / write_bytes imported by name; Path.write_text is a method
            yield name, node.lineno


def test_every_write_in_the_package_is_atomic():
    offenders = []
    for entry in PACKAGE:
        files = [ROOT / entry] if entry.endswith(".py") else sorted((ROOT / entry).rglob("*.py"))
        for path in files:
            rel = str(path.relative_to(ROOT))
            if (rel, "*") in ALLOWED:
                continue
            for name, line in _writes(path):
                if (rel, name) not in ALLOWED:
                    offenders.append(f"{rel}:{line}: {name}")
    assert not offenders, ("non-atomic writes (use modeling_ecmc.atomic_io, or add a reasoned exception):\n"
                           + "\n".join(offenders))
