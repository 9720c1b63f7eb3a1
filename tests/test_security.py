"""Security and privacy (SECURITY.md): only safetensors / non-pickle formats are loaded, no
transcript or caption reaches a log, the code that travels inside checkpoints imports only what it
may, and data sets and checkpoints are pushed private unless asked otherwise.

(a) `test_no_pickle_loading_and_no_foreign_remote_code`: an AST scan of every Python file of the
    repository (tests, outputs and the virtual environment excepted) for `torch.load`, pickle-family
    imports, `np.load` without `allow_pickle=False`, unsafe YAML loaders, `weights_only=False`,
    `use_safetensors=False` and `trust_remote_code` set to anything but `False` outside the
    reviewed places in `REMOTE_CODE_ALLOWED`; plus checks that an ECMC checkpoint holding only
    pickled weights is refused and that our loaders never execute a checkpoint's code.
(b) `test_a_full_run_logs_no_transcript_or_caption`: a small full run in a fresh Python (tiny
    ECMC-Synth -> data set -> feature cache -> one step of stage 1 and of stage 2 -> evaluation with
    captions and a profile), the root logger at DEBUG, warnings routed to the log, stdout and
    stderr captured: no transcript, reference caption (whole, part or sentence), generated caption
    or profile appears.
(c) `test_code_in_a_saved_checkpoint_imports_only_what_it_may`: the .py files transformers copies
    into a saved checkpoint import only the standard library, transformers, torch, numpy, decord,
    torchaudio and each other (flat `from .module import name`).
(d) `test_pushes_are_private_by_default`: every `private` parameter in our code defaults to True,
    every `push_to_hub` / `create_repo` call passes `private` explicitly, and the data CLI's push
    (through stand-ins for the Hub: no network) is private unless `--public`.
"""

import ast
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", "outputs", "tests", ".git", "build", "dist", "node_modules", "__pycache__"}


def source_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath) / name


def _functions(tree):
    """node -> name of the innermost enclosing function (or '<module>')."""
    owner = {}

    def visit(node, name):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else name
            owner[child] = inner
            visit(child, inner)

    visit(tree, "<module>")
    return owner


def _dotted(node) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return getattr(node, "id", "")


def _keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


# ----------------------------------------------------------------------------- (a) formats and remote code
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "_UniqueKeyLoader"}  # the last: training_ecmc.config, a SafeLoader
# Places that set trust_remote_code=True, each reviewed. Loading one of *our* checkpoints by name
# through transformers' Auto classes / pipeline() needs it; anything else loads with our installed
# classes (ECMCForConditionalGeneration.from_pretrained, ECMCProcessor.from_pretrained(...,
# trust_remote_code=False)), which never executes a checkpoint's code.
# torch.load with the restricted unpickler (weights_only=True, written out), in reviewed places only
TORCH_LOAD_ALLOWED = {
    ("processing_ecmc/speakers.py", "__init__"):
        "Resemblyzer's speaker-encoder weights, shipped as a torch file inside the pinned resemblyzer wheel",
}
REMOTE_CODE_ALLOWED = {
    ("modeling_ecmc/pipeline_ecmc.py", "load_pipeline"):
        "the documented `pipeline(model=checkpoint, trust_remote_code=True)` path for ECMC checkpoints "
        "(SECURITY.md: only for checkpoints you made or reviewed)",
}


def _violations(path: Path, rel=None):
    rel = rel or str(path.relative_to(ROOT))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    owner = _functions(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in PICKLE_MODULES:
                    yield f"{rel}:{node.lineno}: imports {name} (pickle can run code on load)"
        if not isinstance(node, ast.Call):
            continue
        func = _dotted(node.func)
        where = f"{rel}:{node.lineno}"
        if func in ("torch.load", "torch.jit.load") or func.endswith(".read_pickle"):
            safe = _keyword(node, "weights_only")
            if not (func == "torch.load" and isinstance(safe, ast.Constant) and safe.value is True
                    and (rel, owner.get(node, "<module>")) in TORCH_LOAD_ALLOWED):
                yield f"{where}: {func} unpickles"
        if func in ("np.load", "numpy.load"):
            value = _keyword(node, "allow_pickle")
            if not (isinstance(value, ast.Constant) and value.value is False):
                yield f"{where}: np.load without allow_pickle=False"
        if func in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            yield f"{where}: {func}"
        if func == "yaml.load":
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if _dotted(loader).split(".")[-1] not in SAFE_YAML_LOADERS:
                yield f"{where}: yaml.load without a SafeLoader"
        for name, bad in (("weights_only", False), ("use_safetensors", False)):
            value = _keyword(node, name)
            if isinstance(value, ast.Constant) and value.value is bad:
                yield f"{where}: {name}={bad}"
        value = _keyword(node, "trust_remote_code")
        if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
            if (rel, owner.get(node, "<module>")) not in REMOTE_CODE_ALLOWED:
                yield f"{where}: trust_remote_code={ast.unparse(value)} in {owner.get(node)}() (not a reviewed place)"


def test_no_pickle_loading_and_no_foreign_remote_code(tmp_path):
    files = list(source_files())
    assert len(files) > 30 and any(p.name == "cache_store.py" for p in files)
    violations = [v for path in files for v in _violations(path)]
    assert not violations, "\n".join(violations)
    sample = tmp_path / "sample.py"  # the scan finds what it looks for
    sample.write_text("import pickle\nimport numpy as np, torch, yaml\ntorch.load('x')\nnp.load('y')\n"
                      "torch.load('w', weights_only=True)\n"  # restricted, but not a reviewed place
                      "yaml.load(open('c'), Loader=yaml.Loader)\nfrom transformers import AutoModel\n"
                      "AutoModel.from_pretrained('z', trust_remote_code=True)\n")
    assert len(list(_violations(sample, "sample.py"))) == 6


def test_ecmc_checkpoints_load_no_pickle_and_no_checkpoint_code(tmp_path, tiny_checkpoint):
    import shutil

    import torch
    from safetensors.torch import load_file

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_checkpoint, folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(OSError, match="model.safetensors"):
        ECMCForConditionalGeneration.from_pretrained(folder)
    # our loaders: a checkpoint whose code would raise on import is never imported
    shutil.copytree(tiny_checkpoint, tmp_path / "booby-trapped")
    for name in ("configuration_ecmc.py", "processing_ecmc.py", "modeling_ecmc.py"):
        (tmp_path / "booby-trapped" / name).write_text("raise SystemExit('checkpoint code was executed')\n")
    ECMCForConditionalGeneration.from_pretrained(tmp_path / "booby-trapped")
    ECMCProcessor.from_pretrained(tmp_path / "booby-trapped", trust_remote_code=False)
    assert not [m for m in sys.modules if m.startswith("transformers_modules.booby")]


# ----------------------------------------------------------------------------- (b) logs
RUN = textwrap.dedent("""
    import logging, sys, warnings
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)  # everything, DEBUG included
    logging.captureWarnings(True)
    warnings.simplefilter("always")
    import train
    from evaluation_ecmc.run_evaluation import main as evaluate
    config, checkpoint = sys.argv[1], sys.argv[2]
    train.main(["--config", config])
    evaluate(["--checkpoint", checkpoint, "--config", config])
""")


def _sentences(text: str):
    return [s for s in re.split(r"(?<=[.?!:;])\s+|\n+", text) if len(s.strip()) > 15]


@pytest.mark.slow
def test_a_full_run_logs_no_transcript_or_caption(tmp_path, tiny_checkpoint):
    from modeling_ecmc.vocabulary_ecmc import format_caption

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"),
        "model": {"checkpoint": str(tiny_checkpoint)},
        "data": {"synth_preset": "tiny", "synth_dir": str(tmp_path / "synth"), "dataset": str(tmp_path / "dataset"),
                 "cache_dir": str(tmp_path / "cache"), "min_duration": 1.0},
        "stage1": {"epochs": 1, "batch_size": 12}, "stage2": {"epochs": 1, "batch_size": 12},  # one step each
        "training": {"logging_steps": 1},
        "evaluate": {"max_new_tokens": 8, "batch_size": 4, "profile_subjects": 1},
    }))
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), TRANSFORMERS_VERBOSITY="debug")
    result = subprocess.run([sys.executable, "-c", RUN, str(config), str(tmp_path / "run" / "checkpoint")], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "DEBUG:" in result.stderr and "[ecmc] evaluation of" in result.stdout  # the capture saw everything

    rows = [json.loads(line) for line in (tmp_path / "synth" / "manifest.jsonl").read_text().splitlines()]
    secrets = set()
    for row in rows:
        for key in ("transcript", "emotion_caption", "cognition_caption"):
            secrets.add(row[key])
            secrets.update(_sentences(row[key]))
        secrets.add(format_caption(row["emotion_caption"], row["cognition_caption"]))
    evaluation = tmp_path / "run" / "evaluation"
    generated = [json.loads(line)["caption"] for line in (evaluation / "captions.jsonl").read_text().splitlines()]
    profiles = list(json.loads((evaluation / "profiles.json").read_text()).values())
    secrets.update(text.strip() for text in generated + profiles if len(text.strip()) > 20)
    assert len(secrets) > 3 * len(rows)
    leaked = sorted(s for s in secrets if s in log)
    assert not leaked, f"{len(leaked)} sensitive strings in the logs, e.g. {leaked[0][:80]!r}"


# ----------------------------------------------------------------------------- (c) code inside checkpoints
# what the model card's install line names (Pillow for the image processors and the face crop), and
# OpenCV, imported only when `face_crop` is on (its error names the package)
CHECKPOINT_IMPORTS = {"transformers", "torch", "numpy", "decord", "torchaudio", "PIL", "cv2"}
TRAVELLING = {"configuration_ecmc.py", "modeling_ecmc.py", "frontends_ecmc.py", "losses_ecmc.py", "processing_ecmc.py", "prompts_ecmc.py",
              "media_ecmc.py", "vocabulary_ecmc.py", "padding_ecmc.py", "encoding_ecmc.py", "faces_ecmc.py"}


def test_code_in_a_saved_checkpoint_imports_only_what_it_may(tiny_checkpoint):
    files = {p.name: p for p in Path(tiny_checkpoint).glob("*.py")}
    assert TRAVELLING <= set(files), sorted(files)
    allowed = CHECKPOINT_IMPORTS | set(sys.stdlib_module_names)
    problems = []
    for name, path in sorted(files.items()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.ImportFrom):  # relative: flat `from .module import name` of a copied file
                if node.level != 1 or not node.module or f"{node.module}.py" not in files:
                    problems.append(f"{name}:{node.lineno}: from {'.' * node.level}{node.module or ''} import ...")
                continue
            elif isinstance(node, ast.Call) and _dotted(node.func) in ("importlib.import_module", "__import__"):
                problems.append(f"{name}:{node.lineno}: dynamic import")
                continue
            else:
                continue
            problems += [f"{name}:{node.lineno}: import {m}" for m in modules if m.split(".")[0] not in allowed]
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- (d) private pushes
# push_to_hub calls that cannot create a repository (huggingface_hub's RepoCard.push_to_hub has no
# `private`: it uploads a card into an existing repository)
PUSH_WITHOUT_PRIVATE = {("hub_card/push.py", "upload_dataset_card"): "the card, after create_repo(..., private)"}


def test_pushes_are_private_by_default(tmp_path, tiny_synth_dataset, monkeypatch, capsys):
    problems = []
    for path in source_files():
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = _functions(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + list(node.args.defaults) \
                    + list(node.args.kw_defaults)
                for arg, default in zip(args, defaults):
                    if arg.arg == "private" and default is not None and not (
                            isinstance(default, ast.Constant) and default.value is True):
                        problems.append(f"{rel}:{node.lineno}: {node.name}(private={ast.unparse(default)})")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("push_to_hub", "create_repo"):  # methods of datasets / huggingface_hub
                if _keyword(node, "private") is None and (rel, owner.get(node)) not in PUSH_WITHOUT_PRIVATE:
                    problems.append(f"{rel}:{node.lineno}: {_dotted(node.func)} without private= (the Hub's default is public)")
    assert not problems, "\n".join(problems)

    import datasets

    from hub_card import push_dataset as push_command
    from hub_card.push_dataset import push_dataset

    assert inspect.signature(push_dataset).parameters["private"].default is True
    calls = []
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo_id, **kw: calls.append(("data", kw)))
    import hub_card.push

    monkeypatch.setattr(hub_card.push, "upload_dataset_card", lambda dsd, repo_id, private=True: calls.append(("card", private)))
    import shutil

    dataset = shutil.copytree(tiny_synth_dataset, tmp_path / "dataset")
    push_command.main(["--dataset", str(dataset), "--repo-id", "me/interviews"])
    push_command.main(["--dataset", str(dataset), "--repo-id", "me/interviews", "--public"])
    assert calls == [("card", True), ("data", {"private": True, "token": None}),
                     ("card", False), ("data", {"private": False, "token": None})]
    assert "(private)" in capsys.readouterr().out
