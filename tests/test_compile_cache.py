"""The persistent compile cache with fake builds (no numba compile: fast, numpy-free)."""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
import time
from pathlib import Path

import pytest

from trialsynth.engines import compile_cache as cc

FLAGS = {"fastmath": False}
NAME = "f-abc.py312"


def _build(content: bytes, name: str = NAME):
    """A fake compile: writes an index and a data file if numba would, returns the data."""

    def build(numba_dir: Path | None) -> str:
        assert numba_dir is not None
        index, data = numba_dir / f"{name}.nbi", numba_dir / f"{name}.1.nbc"
        if not index.exists():
            index.write_bytes(b"index")
            data.write_bytes(content)
        return data.read_bytes().decode()

    return build


def test_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cc.ENV_VAR, str(tmp_path / "c"))
    assert cc.cache_root() == tmp_path / "c"
    monkeypatch.delenv(cc.ENV_VAR)
    assert "trialsynth" in str(cc.cache_root())


def test_toolchain_names_versions_cpu_and_flags():
    tc = cc.toolchain(FLAGS)
    assert set(tc["versions"]) == {*cc.PACKAGES, "python"}
    assert tc["cpu"]["cpu_name"] and len(tc["cpu"]["cpu_features_sha256"]) == 16
    assert tc["flags"] == FLAGS


def test_other_flags_or_cpu_use_another_folder(tmp_path, monkeypatch):
    a = cc.CompileCache({"fastmath": False}, root=tmp_path)
    assert cc.CompileCache({"fastmath": True}, root=tmp_path).folder != a.folder
    monkeypatch.setenv("NUMBA_CPU_NAME", "generic")
    assert cc.CompileCache({"fastmath": False}, root=tmp_path).folder != a.folder


def test_miss_then_hit_and_manifest(tmp_path):
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    out1, r1 = cache.compile("m1", _build(b"code"))
    out2, r2 = cc.CompileCache(FLAGS, root=tmp_path).compile("m1", _build(b"code"))
    assert (out1, out2) == ("code", "code")
    assert (r1.status, r2.status) == ("miss", "hit")
    assert r1.message() is None and r2.message() is None
    manifest = json.loads((cache.folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {f"{NAME}.nbi", f"{NAME}.1.nbc"}
    assert json.loads((cache.folder / "toolchain.json").read_text()) == cache.toolchain


def test_damaged_file_is_deleted_compiled_again_and_reported(tmp_path):
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    cache.compile("m1", _build(b"good"))
    (cache.numba_dir / f"{NAME}.1.nbc").write_bytes(b"bit-flipped")
    out, report = cache.compile("m1", _build(b"good"))
    assert out == "good"  # the fake build rewrote it: the damaged one was deleted
    assert report.status == "damaged" and report.damaged == [f"{NAME}.1.nbc"]
    assert "damaged" in report.message() and "compiled again" in report.message()
    assert cache.compile("m1", _build(b"good"))[1].status == "hit"


def test_truncated_file_is_damaged(tmp_path):
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    cache.compile("m1", _build(b"good code"))
    (cache.numba_dir / f"{NAME}.1.nbc").write_bytes(b"go")
    assert cache.compile("m1", _build(b"good code"))[1].status == "damaged"


@pytest.mark.parametrize("text", ["{not json", '{"version": 99, "files": {}, "models": {}}', "[]"])
def test_damaged_manifest_empties_the_folder(tmp_path, text):
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    cache.compile("m1", _build(b"good"))
    (cache.folder / "manifest.json").write_text(text)
    out, report = cache.compile("m1", _build(b"good"))
    assert out == "good" and report.status == "damaged" and report.damaged == ["manifest.json"]


def test_an_entry_that_fails_to_load_is_compiled_from_scratch(tmp_path):
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    cache.compile("m1", _build(b"good"))
    seen = []

    def build(numba_dir: Path | None) -> str:
        seen.append(sorted(p.name for p in numba_dir.iterdir()))
        if len(seen) == 1:
            raise EOFError("Ran out of input")  # what a truncated pickle raises
        return "rebuilt"

    out, report = cache.compile("m1", build)
    assert out == "rebuilt" and report.retried and report.status == "damaged"
    assert seen[1] == []  # the second attempt started from an empty folder


def test_a_genuine_failure_is_raised(tmp_path):
    def build(numba_dir: Path | None) -> str:
        raise RuntimeError("bad graph")

    with pytest.raises(RuntimeError, match="bad graph"):
        cc.CompileCache(FLAGS, root=tmp_path).compile("m1", build)


def test_unusable_folder_compiles_without_the_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    got = []

    def build(numba_dir: Path | None) -> str:
        got.append(numba_dir)
        return "compiled"

    out, report = cc.CompileCache(FLAGS, root=blocker).compile("m1", build)
    assert out == "compiled" and got == [None]
    assert report.status == "off" and "without it" in report.message()


#: How long a fake compile of the writers below runs, in two halves (s): much longer than
#: the two processes' skew at the start, which :func:`_two_writers` keeps to milliseconds.
HALF_BUILD_S = 0.3


def _writer(root: str, tag: int, queue, ready, go, model: str = "", shared: bytes = b"") -> None:
    """A process that compiles (slowly) into the shared cache once ``go`` is set.

    ``model`` names the model (default ``m<tag>``); ``shared``, if given, is written to a
    file every model has (as two models share numba's files of a common piece).
    """

    def build(numba_dir: Path | None) -> str:
        start = time.time()
        time.sleep(HALF_BUILD_S)
        (numba_dir / f"w{tag}.nbi").write_bytes(b"i")
        (numba_dir / f"w{tag}.1.nbc").write_bytes(b"d" * 1000)
        if shared:
            (numba_dir / "common.nbi").write_bytes(shared)
        time.sleep(HALF_BUILD_S)
        return f"{start} {time.time()}"

    cache = cc.CompileCache(FLAGS, root=Path(root))
    ready.set()
    assert go.wait(60)
    out, report = cache.compile(model or f"m{tag}", build)
    queue.put((tag, out, report.status))


def _spans(results) -> list[tuple[float, float]]:
    return sorted(tuple(map(float, out.split())) for _, out, _ in results)


def _two_writers(tmp_path, kwargs1, kwargs2):
    """Two :func:`_writer` processes, started together once both have imported."""
    ctx = mp.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    ready = [ctx.Event(), ctx.Event()]
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), i, queue, ready[i - 1], go), kwargs=kw)
        for i, kw in ((1, kwargs1), (2, kwargs2))
    ]
    for p in procs:
        p.start()
    assert all(r.wait(60) for r in ready)
    go.set()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results


def test_two_models_compile_at_once_and_both_are_recorded(tmp_path):
    """Different models do not wait for each other (one lock per model)."""
    results = _two_writers(tmp_path, {"shared": b"one"}, {"shared": b"two"})
    spans = _spans(results)
    assert spans[1][0] < spans[0][1], "the second compile waited for the first"
    # each rewrote the file they share while the other ran: in flight, not damage
    assert [status for _, _, status in results] == ["miss", "miss"]
    manifest = json.loads(
        (cc.CompileCache(FLAGS, root=tmp_path).folder / "manifest.json").read_text()
    )
    assert set(manifest["models"]) == {"m1", "m2"} and len(manifest["files"]) == 5
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    assert cache.mismatches(manifest) == []  # the last record holds the last writes
    for tag in (1, 2):
        assert cache.compile(f"m{tag}", lambda d: "loaded")[1].status == "hit"


def test_one_model_compiles_once_at_a_time(tmp_path):
    """A second process wanting the same model waits, then finds it compiled."""
    results = _two_writers(tmp_path, {"model": "same"}, {"model": "same"})
    spans = _spans(results)
    assert spans[0][1] <= spans[1][0], "the two compiles of one model overlapped"
    assert sorted(status for _, _, status in results) == ["hit", "miss"]


def test_a_changed_file_is_damage_once_no_other_compile_runs(tmp_path):
    """The in-flight rule lasts only while another model's compile holds its lock."""
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    cache.compile("m0", _build(b"good"))
    (cache.numba_dir / f"{NAME}.1.nbc").write_bytes(b"changed")
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    lock = cache.folder / ".lock-other"
    holder = ctx.Process(target=_hold_lock, args=(str(cache.folder), ready, release, lock.name))
    holder.start()
    assert ready.wait(60)
    _, report = cc.CompileCache(FLAGS, root=tmp_path).compile("m1", _build(b"x", "g.py312"))
    release.set()
    assert report.status == "miss" and report.damaged == []  # another compile is running
    assert (cache.numba_dir / f"{NAME}.1.nbc").read_bytes() == b"changed"
    holder.join(30)
    assert holder.exitcode == 0
    _, report = cc.CompileCache(FLAGS, root=tmp_path).compile("m2", _build(b"y", "h.py312"))
    assert report.status == "damaged" and report.damaged == [f"{NAME}.1.nbc"]


def test_info_and_clear(tmp_path):
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    cache.compile("m1", _build(b"x" * 100))
    info = cc.info(tmp_path)
    assert info["bytes"] > 100 and len(info["toolchains"]) == 1
    assert info["toolchains"][0]["models"][0]["compile_s"] >= 0
    assert cc.clear(tmp_path) == info["bytes"]
    assert cc.info(tmp_path)["bytes"] == 0
    assert cache.compile("m1", _build(b"x"))[1].status == "miss"
    assert cc.info(tmp_path / "nothing-here") == {
        "root": str(tmp_path / "nothing-here"),
        "bytes": 0,
        "toolchains": [],
    }


def test_cli_cache_info_and_clear(tmp_path, monkeypatch, capsys):
    from trialsynth.cli import main

    monkeypatch.setenv(cc.ENV_VAR, str(tmp_path))
    assert main(["cache", "info"]) == 0
    assert "empty" in capsys.readouterr().out
    cc.CompileCache(cc.COMPILE_FORM).compile("m1", _build(b"x" * 2000))
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (
        info["root"] == str(tmp_path)
        and info["toolchains"][0]["key"] == (info["current_toolchain"])
    )
    assert main(["cache", "info"]) == 0
    text = capsys.readouterr().out
    assert "(current): 1 model(s)" in text and "nutpie" in text
    assert main(["cache", "clear"]) == 0
    assert "freed" in capsys.readouterr().out
    assert cc.info(tmp_path)["bytes"] == 0


def _hold_lock(folder: str, ready, release, name: str = ".lock") -> None:
    """Hold the lock ``name`` from ``ready`` until ``release`` (at most 30 s)."""
    with cc.file_lock(Path(folder) / name):
        ready.set()
        release.wait(30)


#: How long the test below keeps another process's lock held after a hit (s).
HOLD_AFTER_HIT_S = 0.5


def test_a_hit_does_not_wait_for_another_compile(tmp_path):
    """Another process compiling (holding the lock) delays first compiles, not hits."""
    cache = cc.CompileCache(FLAGS, root=tmp_path)
    cache.compile("m1", _build(b"code"))
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(cache.folder), ready, release))
    holder.start()
    assert ready.wait(60)
    t0 = time.perf_counter()
    assert cache.compile("m1", _build(b"code"))[1].status == "hit"  # the lock is held
    hit_s = time.perf_counter() - t0
    timer = threading.Timer(HOLD_AFTER_HIT_S, release.set)
    timer.start()
    _, report = cache.compile("m2", _build(b"other", name="g-def.py312"))
    waited_s = time.perf_counter() - t0
    timer.join()
    holder.join(30)
    assert holder.exitcode == 0
    assert hit_s < 1.0  # milliseconds; a hit that waited for the lock would wait 30 s
    assert report.status == "miss" and waited_s >= HOLD_AFTER_HIT_S


def test_cli_cache_warm_skips_exact_fits(tmp_path, monkeypatch, capsys):
    """Only MCMC fits compile: a normal-normal analysis (exact engine) has none."""
    from trialsynth.cli import main

    monkeypatch.setenv(cc.ENV_VAR, str(tmp_path / "cache"))
    spec = tmp_path / "nn.toml"
    spec.write_text(
        '[analysis]\nname = "nn"\n[data]\nsource = "crins2014"\n'
        '[model]\nmodel = "normal-normal"\n'
        '[sensitivity]\ntau = ["half-normal(0.5)", "half-normal(1)"]\n'
    )
    assert main(["cache", "warm", str(spec)]) == 0
    assert "0 model structure(s), 0 compiled now" in capsys.readouterr().out


def _saver(folder: str, tag: int, n: int, ready, go) -> None:
    """A process adding ``n`` entries to one numba cache index (as two compiles would)."""
    from numba.core.caching import IndexDataCacheFile

    cc._lock_numba_saves()
    cache_file = IndexDataCacheFile(folder, "shared-fn", source_stamp=("stamp", 1))
    ready.set()
    assert go.wait(60)
    for i in range(n):
        cache_file.save(f"{tag}-{i}", f"code of {tag}-{i}")


def test_numba_index_writes_from_two_processes_keep_every_entry_with_its_own_data(tmp_path):
    """Each key of a shared numba index names its own data, whoever wrote last.

    With numba's own save (index before data, no lock), two processes adding 200 entries
    each to one index at once lost 67-189 entries and left some naming the other
    process's data (three runs, 2026-12-01): numba would load another signature's code.
    """
    from numba.core.caching import IndexDataCacheFile

    ctx = mp.get_context("spawn")
    go, ready = ctx.Event(), [ctx.Event(), ctx.Event()]
    procs = [
        ctx.Process(target=_saver, args=(str(tmp_path), tag, 200, ready[tag - 1], go))
        for tag in (1, 2)
    ]
    for p in procs:
        p.start()
    assert all(r.wait(60) for r in ready)  # both imported numba: start them together
    go.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache_file = IndexDataCacheFile(str(tmp_path), "shared-fn", source_stamp=("stamp", 1))
    for tag in (1, 2):
        for i in range(200):
            assert cache_file.load(f"{tag}-{i}") == f"code of {tag}-{i}"
