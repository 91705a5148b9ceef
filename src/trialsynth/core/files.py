"""Files never half-written: atomic text writes and multi-file commits with a journal.

:func:`commit_files` writes every file of a save to a hidden temporary name in the folder,
then a small journal (``.trialsynth-commit.json``, itself temp + rename) naming the renames,
then renames the files into place and deletes the journal. A process killed before the
journal exists leaves the previous files untouched; killed after, the next :func:`recover`
finishes the renames. The folder holds the old set or the new set, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

JOURNAL = ".trialsynth-commit.json"
TEMP_PREFIX = ".trialsynth-tmp-"

Writer = Callable[[Path], None]
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_temp(folder: Path, name: str, content: str | Writer) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TEMP_PREFIX}{name}.")
    path = Path(tmp)
    try:
        if isinstance(content, str):
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            os.close(fd)
            content(path)
        os.chmod(path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def commit_files(folder: str | os.PathLike[str], files: Mapping[str, str | Writer]) -> Path:
    """Write ``files`` (name -> text, or a function writing to a given path) as one commit.

    Parameters
    ----------
    folder : path
        The output folder (created if missing).
    files : mapping
        File name in the folder -> its text, or a callable that writes the file at the
        path it is given (e.g. a netCDF writer).

    Returns
    -------
    Path
        The folder.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    recover(out)
    staged: dict[str, Path] = {}
    try:
        for name, content in files.items():
            staged[name] = _write_temp(out, name, content)
        journal = {"moves": [[tmp.name, name] for name, tmp in staged.items()]}
        tmp_journal = _write_temp(out, JOURNAL, json.dumps(journal))
        os.replace(tmp_journal, out / JOURNAL)  # the commit point
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    _apply_journal(out)
    return out


def _apply_journal(out: Path) -> None:
    journal = json.loads((out / JOURNAL).read_text(encoding="utf-8"))
    for tmp_name, name in journal["moves"]:
        tmp = out / tmp_name
        if tmp.exists():  # else: already moved before an interruption
            os.replace(tmp, out / name)
    (out / JOURNAL).unlink()


def recover(folder: str | os.PathLike[str]) -> bool:
    """Finish a save that was interrupted after its commit point; drop uncommitted temps.

    Returns
    -------
    bool
        True when an interrupted commit was completed.
    """
    out = Path(folder)
    if not out.is_dir():
        return False
    done = False
    if (out / JOURNAL).exists():
        try:
            _apply_journal(out)
            done = True
        except (OSError, ValueError, KeyError, TypeError):
            # An unreadable journal cannot come from commit_files (it is renamed into
            # place whole); leave the folder as it is for the load checks to report.
            return False
    for stray in out.glob(f"{TEMP_PREFIX}*"):
        stray.unlink(missing_ok=True)
    return done
