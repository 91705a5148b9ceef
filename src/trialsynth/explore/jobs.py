"""MCMC jobs: one fit at a time in a child process, with phases, elapsed time and cancel.

A child process (``spawn``) runs the same analysis as ``trialsynth fit`` and sends its
phases (``compile``, ``sample``, ``diagnostics``, ``refit``) and then the page's view of
the result back through a pipe. Cancelling terminates the child; a crash in the sampler
fails the job, never the server.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from trialsynth.explore.service import Settings

PHASES = ("start", "compile", "sample", "diagnostics", "refit", "summarise", "done")
STATES = ("queued", "running", "done", "failed", "cancelled")
#: Jobs kept for GET after they finish (the oldest finished ones are forgotten).
KEEP_FINISHED = 50


def _child(data: Any, settings: dict[str, Any], conn: Any) -> None:
    """Child process: fit by MCMC and send ("phase", name)... then ("done", payload)."""
    try:
        from trialsynth.analysis.sensitivity import power_scaling
        from trialsynth.explore.service import Settings, analysis
        from trialsynth.explore.views import view_payload

        s = Settings(**{**settings, "exclude": tuple(settings["exclude"])})
        conn.send(("phase", "start"))
        result = analysis(data, s, progress=lambda phase: conn.send(("phase", phase)))
        conn.send(("phase", "summarise"))
        payload = view_payload(result)
        payload["psense"] = power_scaling(result)
        conn.send(("done", payload))
    except Exception as err:  # reported to the page as the job's error, one line
        from trialsynth.explore.service import ExploreError

        detail = str(err) if isinstance(err, ExploreError) else traceback.format_exc(limit=3)
        conn.send(("failed", f"{type(err).__name__}: {err}".splitlines()[0], detail))
    finally:
        conn.close()


@dataclass
class Job:
    """One MCMC fit requested by the page or a script."""

    id: str
    settings: Settings
    state: str = "queued"
    phase: str = "queued"
    phases: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    payload: dict[str, Any] | None = None
    process: Any = None

    def to_json(self, *, with_result: bool = True) -> dict[str, Any]:
        """The job's JSON (the summary and view once done)."""
        now = self.finished or time.time()
        done_phases = [p["phase"] for p in self.phases]
        out: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "phase": self.phase,
            "phases": self.phases,
            "progress": _progress(done_phases, self.state),
            "elapsed_s": None if self.started is None else round(now - self.started, 3),
            "settings": self.settings.to_dict(),
            "error": self.error,
        }
        if with_result and self.payload is not None:
            out["summary"] = self.payload["summary"]
        return out


def _progress(done: list[str], state: str) -> float:
    """A coarse fraction for the progress bar: the phases reached (sampling weighs most)."""
    if state == "done":
        return 1.0
    weights = {"start": 0.05, "compile": 0.35, "sample": 0.85, "diagnostics": 0.9}
    weights |= {"refit": 0.95, "summarise": 0.97}
    return max([0.0, *(weights.get(p, 0.0) for p in done)])


class JobManager:
    """Runs MCMC jobs one at a time (2-core machines), FIFO, each in a child process."""

    def __init__(self, data: Any, on_done: Any) -> None:
        self._data = data
        self._on_done = on_done
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._ctx = mp.get_context("spawn")
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name="explore-jobs", daemon=True)
        self._worker.start()

    def submit(self, settings: Settings) -> Job:
        """Queue a fit (an identical queued or running job is returned instead)."""
        with self._lock:
            for job in self._jobs.values():
                if job.settings.key() == settings.key() and job.state in ("queued", "running"):
                    return job
            job = Job(id=f"job{next(self._ids)}", settings=settings)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._forget_old()
            self._lock.notify_all()
            return job

    def get(self, job_id: str) -> Job | None:
        """The job of that id (None when unknown)."""
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        """All known jobs, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a finished job stays as it is)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in ("queued", "running"):
                return job
            if job.state == "queued":
                self._queue.remove(job)
            elif job.process is not None:
                job.process.terminate()
            job.state, job.phase, job.finished = "cancelled", "cancelled", time.time()
            return job

    def close(self) -> None:
        """Stop the worker and terminate any running child (server shutdown)."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.state == "running" and job.process is not None:
                    job.process.terminate()
            self._lock.notify_all()
        self._worker.join(timeout=10)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed", "cancelled")]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._queue.popleft()
                job.state, job.phase, job.started = "running", "starting", time.time()
                parent, child = self._ctx.Pipe(duplex=False)
                job.process = self._ctx.Process(
                    target=_child,
                    args=(self._data, job.settings.to_dict(), child),
                    name=f"trialsynth-explore-{job.id}",
                    daemon=True,
                )
                job.process.start()
                child.close()
            self._follow(job, parent)

    def _follow(self, job: Job, conn: Any) -> None:
        """Read the child's messages until it finishes, fails, dies or is cancelled."""
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                if job.state == "cancelled":
                    break
                kind = message[0]
                if kind == "phase":
                    job.phase = message[1]
                    job.phases.append(
                        {"phase": message[1], "t_s": round(time.time() - (job.started or 0), 3)}
                    )
                elif kind == "done":  # stored before the state says done (no 409 race)
                    self._on_done(job.settings, message[1])
                    job.payload, job.state, job.phase = message[1], "done", "done"
                elif kind == "failed":
                    job.error, job.state, job.phase = message[1], "failed", "failed"
        job.process.join(timeout=5)
        with self._lock:
            if job.state == "running":  # the child died without a word
                job.state, job.phase = "failed", "failed"
                job.error = f"the sampler process ended unexpectedly (exit {job.process.exitcode})"
            job.finished = job.finished or time.time()
            job.process = None
        conn.close()
