"""Atomic writes: whoever reads a file or folder we wrote (a later run, another process, a rerun
after ``kill -9``) sees the old version or the new one, never half of one.

Every file is written to a temporary sibling ``.<name>.<pid>.tmp``, flushed, fsync'ed and renamed
over its final name (``os.replace``, atomic on POSIX within one file system). Folders (saved data
sets, checkpoints) are written to a temporary sibling folder and swapped in with two renames; the
old folder is kept as ``.<name>.<pid>.old`` until the new one is in place, and
``recover_folder`` puts it back if the writer died between the two renames.

    write_text(path, text)                   # also write_bytes, write_json
    with atomic_file(path) as tmp: ...       # anything that writes a file by name (csv, savefig)
    save_figure(fig, path, dpi=110)          # matplotlib, format from the extension
    with atomic_folder(path) as tmp: ...     # anything that writes a folder (save_to_disk, save_pretrained)

Temporaries of dead processes are removed by ``remove_dead_temporaries(folder)``. ``read_utf8`` is the
one reader of text files users write (manifests, configs). This module does not travel inside
checkpoints.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "write_bytes",
    "write_text",
    "write_json",
    "atomic_file",
    "atomic_folder",
    "save_figure",
    "recover_folder",
    "remove_dead_temporaries",
    "temporary_name",
    "read_utf8",
]

_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<kind>tmp|old)$")


def read_utf8(path, what: str = "file", error=ValueError) -> str:
    """The text of `path` (a manifest, a config): a missing file or bytes that are not UTF-8 raise
    `error` naming the file, the byte offset and line; a leading byte-order mark is dropped."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found" if not path.exists() else f"{path}: not a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = " (it starts with a UTF-16 byte-order mark)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise error(f"{path}: not valid UTF-8 at byte offset {exc.start} (line {line}): {exc.reason}{hint}; "
                    "re-save the file as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def temporary_name(path, kind: str = "tmp") -> Path:
    """``.<name>.<pid>.<kind>`` next to ``path`` (kind: "tmp" for a new version, "old" for the replaced one)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{kind}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling, fsync, rename)."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(path, text.encode(encoding))


def write_json(path, value, **dumps_kwargs) -> Path:
    """``json.dumps(value, **dumps_kwargs)`` plus a final newline, written atomically."""
    return write_text(path, json.dumps(value, **dumps_kwargs) + "\n")


@contextmanager
def atomic_file(path):
    """Yield a temporary path to write; on success it replaces ``path`` (fsync'ed), on error it is removed."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_figure(fig, path, **savefig_kwargs) -> str:
    """``fig.savefig`` atomically; the format comes from the file extension (default png)."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=savefig_kwargs.pop("format", path.suffix.lstrip(".") or "png"), **savefig_kwargs)
    write_bytes(path, buffer.getvalue())
    return str(path)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _leftovers(path: Path, kind: str):
    """(temporary, pid) siblings of ``path`` of the given kind, newest first."""
    found = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.{kind}"):
        match = _TMP_RE.match(candidate.name)
        if match and match.group("name") == path.name and match.group("kind") == kind:
            found.append((candidate, int(match.group("pid"))))
    return sorted(found, key=lambda item: item[0].stat().st_mtime_ns, reverse=True)


def recover_folder(path) -> bool:
    """If ``path`` is missing because a writer died between the two renames of ``atomic_folder``,
    rename the old version back; remove the temporaries of dead writers. True if something was recovered."""
    path = Path(path)
    if not path.parent.is_dir():
        return False
    recovered = False
    for old, pid in _leftovers(path, "old"):
        if _pid_alive(pid):
            continue
        if not path.exists():
            os.replace(old, path)
            recovered = True
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp, pid in _leftovers(path, "tmp"):
        if not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    return recovered


@contextmanager
def atomic_folder(path):
    """Yield a temporary folder path (not yet created) to write a whole folder into; on success it
    replaces ``path`` (the old version survives until the new one is in place), on error it is
    removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path)
    tmp, old = temporary_name(path, "tmp"), temporary_name(path, "old")
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        yield tmp
        if not tmp.is_dir():
            raise FileNotFoundError(f"{tmp}: the writer created no folder")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def remove_dead_temporaries(folder) -> int:
    """Remove ``.<name>.<pid>.tmp`` files in ``folder`` whose writer process is gone; return how many."""
    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        match = _TMP_RE.match(tmp.name)
        if match and tmp.is_file() and not _pid_alive(int(match.group("pid"))):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
