"""A fresh virtual environment holding exactly some distributions and what they require, made from
the copies installed here (linked file by file, nothing downloaded), for tests of what a user who
installs only those packages gets.

    python = fresh_env(tmp_path / "env", ["transformers>=5.24", "torch", "torchaudio", "decord", "pillow"])
    python = fresh_env(tmp_path / "env", requirements_file(folder / "requirements.txt"))
"""

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from packaging.requirements import Requirement


def required_closure(names) -> dict:
    """{normalised name: Distribution} of `names` (requirement strings: a version range given must
    hold for the copy installed here) and, recursively, their requirements whose markers hold here
    (extras not asked for are left out)."""
    todo = [Requirement(n) for n in names]
    for req in todo:
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue  # said below
        if not req.specifier.contains(version, prereleases=True):
            raise RuntimeError(f"{req} is asked for, but {req.name} {version} is installed here")
    found = {}
    while todo:
        req = todo.pop()
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        if key in found:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"{req.name} is not installed here, so a fresh environment cannot hold it") from None
        found[key] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return found


def requirements_file(path: Path) -> list[str]:
    """The requirement strings of a requirements.txt (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def fresh_env(target: Path, names) -> Path:
    """Create the environment at `target`; returns its python. Each distribution's files (and its
    .dist-info) are symlinked into the new site-packages."""
    target = Path(target)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    here = Path(sysconfig.get_paths()["purelib"])
    for dist in required_closure(names).values():
        for file in dist.files or []:
            source = Path(dist.locate_file(file)).resolve()
            try:
                relative = source.relative_to(here.resolve())
            except ValueError:
                continue  # scripts in bin/ and the like
            link = site / relative
            if link.exists() or not source.is_file():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, link)
    return python
