"""The persistent compile cache of the MCMC engine: compile a model once per machine.

Compiled numba code lives in one folder per *toolchain*. A toolchain is what compiled code
depends on besides the model: the versions of pymc, pytensor, nutpie, numba, llvmlite,
numpy and Python, the CPU target numba compiles for (LLVM's host CPU name and features),
and the flags of trialsynth's one compile form. Code from another toolchain is never
served, because it sits in another folder. This matters: pytensor's own numba cache keys
carry no pytensor version, and a changed CPU or flag changes the code.

Layout under :func:`cache_root` (``$TRIALSYNTH_CACHE_DIR``, else the platformdirs user
cache folder)::

    mcmc/<key>/toolchain.json   what the key stands for
    mcmc/<key>/manifest.json    sha256 of every numba cache file; the models compiled
    mcmc/<key>/numba/           numba's index (.nbi) and data (.nbc) files
    mcmc/<key>/.lock            held (flock) while checking files and recording
    mcmc/<key>/.lock-<model>    held while compiling that model

Safety:

* One process compiles a given model at a time (an ``flock`` on ``.lock-<model>``; the OS
  releases it if the process dies). A second process that wants the same model waits,
  then loads what the first wrote instead of compiling it again. Different models
  compile at once (``run`` compiles its sensitivity scenarios' other structures in a
  second process beside the main fit); the checks and the manifest's record take the
  folder's ``.lock`` for a moment each.
* Two models share numba's files of the pieces they have in common, so a compile may
  rewrite a file the manifest recorded for another model. While any other compile is
  running, a file that differs from the manifest is taken to be in flight, not damaged:
  it is left alone. Each compile records the sha256 of the files that changed while it
  ran and keeps the recorded sum of the others, so a file damaged meanwhile is not taken
  as sound; the next check with no other compile running finds it.
* numba writes its files by write-then-rename, and so does the manifest.
* Before compiling, every file is checked against its sha256 in the manifest. A file
  that differs is damaged: it is deleted, numba compiles that function again, and the
  returned :class:`CacheReport` says so (``status="damaged"``). A compile that fails while
  it loads from the cache is retried once in an emptied folder.
* If the folder cannot be written, the model compiles without the cache
  (``status="off"``, with the reason).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from trialsynth.core.files import atomic_write_text
from trialsynth.core.files import sha256_file as _sha256
from trialsynth.engines.nutpie_wrappers import WRAPPER_VERSION

#: Environment variable that moves the cache folder.
ENV_VAR = "TRIALSYNTH_CACHE_DIR"
#: Format of manifest.json; a manifest of another format counts as damaged.
MANIFEST_VERSION = 1
#: Packages whose versions are part of the toolchain key.
PACKAGES = ("pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy")
#: The one compile form of every MCMC fit (:func:`trialsynth.engines.mcmc.compile_model`);
#: part of the toolchain key.
COMPILE_FORM = {"form": "reusable", "fastmath": False, "wrappers": f"trialsynth-{WRAPPER_VERSION}"}

T = TypeVar("T")
_THREAD_LOCK = threading.RLock()


def cache_root() -> Path:
    """The trialsynth cache folder: ``$TRIALSYNTH_CACHE_DIR`` or the user cache folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("trialsynth", appauthor=False))


def cpu_target() -> dict[str, str]:
    """The CPU numba compiles for: LLVM's host CPU name and a hash of its features.

    ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` win when set, as they do in numba (read
    from the environment here, so that this needs llvmlite only, not numba's import).
    """
    import llvmlite.binding as llvm

    name = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
    features = os.environ.get("NUMBA_CPU_FEATURES") or llvm.get_host_cpu_features().flatten()
    return {
        "machine": platform.machine(),
        "cpu_name": str(name),
        "cpu_features_sha256": hashlib.sha256(str(features).encode()).hexdigest()[:16],
    }


def toolchain(flags: dict[str, Any]) -> dict[str, Any]:
    """What compiled code depends on besides the model: versions, CPU target, flags."""
    versions = {name: metadata.version(name) for name in PACKAGES}
    versions["python"] = platform.python_version()
    return {"versions": versions, "cpu": cpu_target(), "flags": dict(sorted(flags.items()))}


def toolchain_key(tc: dict[str, Any]) -> str:
    """A short stable hash of a :func:`toolchain` (the folder's name)."""
    return hashlib.sha256(json.dumps(tc, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class CacheReport:
    """What the cache did for one compile.

    Attributes
    ----------
    status : {"hit", "miss", "damaged", "off"}
        ``hit``: this model was compiled before with this toolchain; ``miss``: its first
        compile here; ``damaged``: cache files failed their check and were recompiled;
        ``off``: the cache folder could not be used (``reason`` says why).
    folder : str
        The toolchain folder.
    damaged : list of str
        The files found damaged (deleted, then compiled again).
    seconds : float
        Time spent, cache checks included.
    retried : bool
        Whether a compile that failed while loading from the cache was redone from scratch.
    reason : str
        Why the cache was off.
    """

    status: str
    folder: str
    damaged: list[str] = field(default_factory=list)
    seconds: float = 0.0
    retried: bool = False
    reason: str = ""

    def message(self) -> str | None:
        """One line for the user when the cache needed repair or was off, else None."""
        if self.status == "off":
            return f"compile cache not used ({self.reason}); compiled without it"
        if self.status != "damaged":
            return None
        names = ", ".join(self.damaged[:3]) + (" ..." if len(self.damaged) > 3 else "")
        return (
            f"compile cache: {len(self.damaged)} damaged file(s) in {self.folder} "
            f"({names}) were deleted and compiled again"
        )


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (``flock``) and threads."""
    with _THREAD_LOCK, process_lock(path):
        yield


@contextlib.contextmanager
def process_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (across processes only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def numba_cache_at(folder: Path | None) -> Iterator[None]:
    """Send pytensor's numba cache to ``folder`` for the functions created in the block.

    numba fixes a function's cache folder when the function is created, so everything
    compiled from inside the block is cached there. ``None`` leaves pytensor's folder.
    """
    if folder is None:
        yield
        return
    from pytensor.link.numba import cache as pt_cache

    _lock_numba_saves()
    old = pt_cache.NUMBA_CACHE_PATH
    pt_cache.NUMBA_CACHE_PATH = folder
    try:
        yield
    finally:
        pt_cache.NUMBA_CACHE_PATH = old


def _locked_save(self: Any, key: Any, data: Any) -> None:
    """Save a numba cache entry safely while other processes write the same index.

    numba's ``IndexDataCacheFile.save`` reads the index, picks a free data-file name,
    writes the index, then the data, with no lock. Two processes adding different entries
    (one function, two signatures) at once can leave an index whose entry names the
    other's data file, and numba would then load the other signature's code. Here the
    read-pick-write runs under an ``flock`` on ``<index>.lock``, and the data file is
    written before the index that names it. (numba's compiler lock already keeps this
    process's threads apart here.)
    """
    with process_lock(Path(self._index_path + ".lock")):
        overloads = self._load_index()
        data_name = overloads.get(key)
        if data_name is None:
            taken = set(overloads.values())
            data_name = next(
                name
                for name in (self._data_name(i) for i in itertools.count(1))
                if name not in taken
            )
        self._save_data(data_name, data)
        if overloads.get(key) != data_name:
            overloads[key] = data_name
            self._save_index(overloads)


def _lock_numba_saves() -> None:
    """Install :func:`_locked_save` (once per process; numba's own code otherwise)."""
    from numba.core import caching

    if caching.IndexDataCacheFile.save is not _locked_save:
        caching.IndexDataCacheFile.save = _locked_save


class _LoadFailed(Exception):
    """A compile that loaded from the cache failed (seen without the lock)."""


def _empty_manifest() -> dict[str, Any]:
    return {"version": MANIFEST_VERSION, "files": {}, "models": {}}


class CompileCache:
    """One toolchain folder of the cache (see the module docstring)."""

    def __init__(self, flags: dict[str, Any], root: Path | None = None) -> None:
        self.toolchain = toolchain(flags)
        self.key = toolchain_key(self.toolchain)
        self.root = root if root is not None else cache_root()
        self.folder = self.root / "mcmc" / self.key
        self.numba_dir = self.folder / "numba"
        self._load_failed = False

    def read_manifest(self) -> tuple[dict[str, Any], bool]:
        """The manifest, and whether it was sound (a missing one is sound and empty)."""
        path = self.folder / "manifest.json"
        if not path.exists():
            return _empty_manifest(), True
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return _empty_manifest(), False
        sound = (
            isinstance(data, dict)
            and data.get("version") == MANIFEST_VERSION
            and isinstance(data.get("files"), dict)
            and isinstance(data.get("models"), dict)
        )
        return (data, True) if sound else (_empty_manifest(), False)

    def files(self) -> list[Path]:
        """The numba cache files in the folder."""
        if not self.numba_dir.is_dir():
            return []
        return sorted(
            p for p in self.numba_dir.iterdir() if p.is_file() and p.suffix in (".nbi", ".nbc")
        )

    def mismatches(self, manifest: dict[str, Any]) -> list[str]:
        """The cache files whose content differs from their sha256 in the manifest.

        A file the manifest does not list is not checked (it was written outside a
        recorded compile); the next compile records it.
        """
        out = []
        for path in self.files():
            want = manifest["files"].get(path.name)
            if want is None:
                continue
            try:
                sound = _sha256(path) == want
            except OSError:
                sound = False
            if not sound:
                out.append(path.name)
        return out

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        out = {}
        for p in self.files():
            with contextlib.suppress(OSError):
                st = p.stat()
                out[p.name] = (st.st_size, st.st_mtime_ns)
        return out

    def verify(self, manifest: dict[str, Any]) -> list[str]:
        """Delete, and return the names of, the cache files that differ from the manifest."""
        damaged = self.mismatches(manifest)
        for name in damaged:
            (self.numba_dir / name).unlink(missing_ok=True)
            if name.endswith(".nbc"):  # its index names it: rewrite the index cleanly
                stem = name.rsplit(".", 2)[0]
                (self.numba_dir / f"{stem}.nbi").unlink(missing_ok=True)
        return damaged

    def _record(
        self,
        manifest: dict[str, Any],
        model_key: str,
        info: dict[str, Any],
        before: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        """Write ``manifest`` with this model and the sha256 of the files it wrote.

        ``before``: the files' :meth:`_snapshot` when this compile started; only files
        changed since are hashed again (others keep their recorded sum, so a file damaged
        meanwhile is not taken as sound). None rehashes every file.
        """
        recorded = manifest["files"] if before is not None else {}
        files = {}
        for name, stat in self._snapshot().items():
            unchanged = before is not None and before.get(name) == stat and name in recorded
            files[name] = recorded[name] if unchanged else _sha256(self.numba_dir / name)
        manifest["files"] = files
        manifest["models"][model_key] = info
        atomic_write_text(self.folder / "manifest.json", json.dumps(manifest, sort_keys=True))
        if not (self.folder / "toolchain.json").exists():
            atomic_write_text(
                self.folder / "toolchain.json", json.dumps(self.toolchain, indent=1, sort_keys=True)
            )

    def _prepare(self, model_key: str) -> tuple[dict[str, Any], list[str]]:
        """Read and check the manifest and the files (under the folder lock)."""
        manifest, sound = self.read_manifest()
        damaged: list[str] = []
        in_flight = self._others_compiling(model_key)
        if not sound and not in_flight:
            damaged.append("manifest.json")
            shutil.rmtree(self.numba_dir, ignore_errors=True)
        if not in_flight:  # else a differing file may be another compile's, not damage
            damaged += self.verify(manifest)
        self.numba_dir.mkdir(parents=True, exist_ok=True)
        return manifest, damaged

    def _others_compiling(self, model_key: str) -> bool:
        """Whether a process holds the compile lock of another model of this folder."""
        for lock in self.folder.glob(".lock-*"):
            if lock.name != _model_lock_name(model_key) and _is_locked(lock):
                return True
        return False

    def compile(
        self,
        model_key: str,
        build: Callable[[Path | None], T],
        describe: dict[str, Any] | None = None,
    ) -> tuple[T, CacheReport]:
        """``build(numba_dir)`` with the checks before and a record after.

        A model the manifest lists, with every file sound, is loaded under its own lock
        only (so a cold compile of another model does not hold it up); if numba wrote
        anything meanwhile, that is recorded under the folder's lock. Anything else (a
        first compile, a mismatching file) runs under the locks, where the files are
        checked again and damaged ones deleted: a file another process was rewriting a
        moment ago is then recorded, not reported as damaged.

        ``build`` must send numba's cache to the folder it is given (:func:`numba_cache_at`)
        and compile there everything it will run: what compiles later is not checked.
        It is called with None when the cache folder cannot be used.
        """
        t0 = time.perf_counter()
        fast = self._compile_unlocked(model_key, build, t0)
        if fast is not None:
            return fast
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.folder / _model_lock_name(model_key)))
                with file_lock(self.folder / ".lock"):
                    manifest, damaged = self._prepare(model_key)
                    before = self._snapshot()
            except OSError as err:
                stack.close()
                result = build(None)
                reason = f"{self.folder}: {err.strerror or err}"
                return result, CacheReport(
                    "off", str(self.folder), reason=reason, seconds=time.perf_counter() - t0
                )
            return self._compile_locked(model_key, build, describe, t0, (manifest, before), damaged)

    def _compile_unlocked(
        self, model_key: str, build: Callable[[Path | None], T], t0: float
    ) -> tuple[T, CacheReport] | None:
        """The hit path: None unless the model is recorded and every file is sound."""
        manifest, sound = self.read_manifest()
        if not sound or model_key not in manifest["models"] or not self.numba_dir.is_dir():
            return None
        if self.mismatches(manifest):
            return None
        # the model's lock while loading: should numba compile a piece after all (an entry
        # another process's concurrent write dropped from a shared index), another
        # process's check then sees that file in flight rather than damaged
        try:
            with file_lock(self.folder / _model_lock_name(model_key)):
                before = self._snapshot()
                result = build(self.numba_dir)
        except OSError:
            return None
        except Exception:  # an entry failed to load: the locked path starts afresh
            self._load_failed = True
            return None
        if self._snapshot() != before:  # numba compiled something after all: record it
            with contextlib.suppress(OSError), file_lock(self.folder / ".lock"):
                current, sound = self.read_manifest()
                if sound:
                    self._record(current, model_key, manifest["models"][model_key], before)
        return result, CacheReport("hit", str(self.folder), seconds=time.perf_counter() - t0)

    def _compile_locked(
        self,
        model_key: str,
        build: Callable[[Path | None], T],
        describe: dict[str, Any] | None,
        t0: float,
        start: tuple[dict[str, Any], dict[str, tuple[int, int]]],
        damaged: list[str],
    ) -> tuple[T, CacheReport]:
        """The miss path, under the model's lock.

        ``start``: the manifest and the files' snapshot after the checks.
        """
        manifest, before = start
        hit = model_key in manifest["models"] and not damaged
        retried = False
        try:
            if self._load_failed:
                self._load_failed = False
                raise _LoadFailed
            result = build(self.numba_dir)
        except Exception as err:
            if not isinstance(err, _LoadFailed) and not self.files():
                raise  # nothing came from the cache: a genuine failure
            # loading an entry failed in a way the checksums did not catch (e.g. an
            # entry written by a process killed mid-way): start this folder afresh
            damaged.append("numba/ (an entry failed to load)")
            shutil.rmtree(self.numba_dir, ignore_errors=True)
            self.numba_dir.mkdir(parents=True)
            manifest, retried, hit, before = _empty_manifest(), True, False, {}
            result = build(self.numba_dir)
        seconds = time.perf_counter() - t0
        info = dict(describe or {})
        previous = manifest["models"].get(model_key) if hit else None
        info["compiled_at"] = previous.get("compiled_at") if previous else time.time()
        info["compile_s"] = previous.get("compile_s") if previous else round(seconds, 3)
        try:
            with file_lock(self.folder / ".lock"):
                current, sound = self.read_manifest()  # other models recorded meanwhile
                if sound and not retried:
                    manifest = current
                self._record(manifest, model_key, info, before)
        except OSError:
            pass  # the compile stands; the next one records it
        status = "damaged" if damaged else ("hit" if hit else "miss")
        return result, CacheReport(status, str(self.folder), damaged, seconds, retried)


def _model_lock_name(model_key: str) -> str:
    return f".lock-{model_key}"


def _is_locked(path: Path) -> bool:
    """Whether another process holds the ``flock`` on ``path`` (a quick try)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return False
    try:
        with path.open("a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _folder_bytes(folder: Path) -> int:
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".lock")
    )


def info(root: Path | None = None) -> dict[str, Any]:
    """What the cache holds: each toolchain folder with its key, size and models."""
    root = root if root is not None else cache_root()
    out: dict[str, Any] = {"root": str(root), "bytes": 0, "toolchains": []}
    base = root / "mcmc"
    if not base.is_dir():
        return out
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            tc = json.loads((folder / "toolchain.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tc = None
        try:
            models = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["models"]
            models = sorted(models.values(), key=lambda m: m.get("compiled_at") or 0)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            models = []
        size = _folder_bytes(folder)
        out["bytes"] += size
        out["toolchains"].append(
            {
                "key": folder.name,
                "folder": str(folder),
                "bytes": size,
                "toolchain": tc,
                "models": models,
            }
        )
    return out


def clear(root: Path | None = None) -> int:
    """Delete the compiled code of every toolchain; returns the bytes freed.

    Each folder is emptied under its locks, so a compile running meanwhile finishes first.
    """
    root = root if root is not None else cache_root()
    base = root / "mcmc"
    if not base.is_dir():
        return 0
    freed = 0
    for folder in [p for p in base.iterdir() if p.is_dir()]:
        with contextlib.ExitStack() as locks:
            for lock in sorted(folder.glob(".lock-*")):  # compiles first, as compile() does
                locks.enter_context(file_lock(lock))
            locks.enter_context(file_lock(folder / ".lock"))
            freed += _folder_bytes(folder)
            for child in folder.iterdir():
                if child.name.startswith(".lock"):
                    continue
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    return freed
