"""One model, many requests: a bounded queue in front of a single worker thread.

Policy (also in docs/serving.md):
- The model runs on exactly one thread; requests never touch it concurrently.
- Requests wait in one first-in-first-out queue of at most `max_waiting` entries; a request
  that finds it full is refused at once (the server answers 503) instead of piling up.
- The worker takes the oldest request. If it can share a batch (a non-streaming chat), every
  other waiting request with the same batch key (same sampling settings) joins it, oldest
  first, up to `max_batch_rows` rows in all; they are answered together, each with its own seed,
  so an answer does not depend on what it was batched with. Streaming chats and image
  generations run alone (an image request already batches its n images).
- A request whose client goes away is cancelled: if still waiting, it leaves the queue at once
  (freeing its place); if running, the work stops at the next step that checks (a stream at its
  next token, an image generation at its next token); a batched chat finishes its batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

log = logging.getLogger(__name__)


class QueueFull(Exception):
    pass


class Cancelled(Exception):
    """Raised inside running work whose client has gone."""


@dataclass(eq=False)
class Job:
    """One request's work. `batch_key`: jobs with equal non-None keys may share a batch."""

    kind: str
    payload: Any
    batch_key: Hashable | None = None
    rows: int = 1
    future: Future = field(default_factory=Future)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.monotonic)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()


Executor = Callable[[list[Job]], None]


@dataclass
class SchedulerStats:
    waiting: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    rejected: int = 0
    batches: int = 0
    largest_batch: int = 0


class Scheduler:
    """The queue and the worker thread. `execute(jobs)` runs one batch (one job, or several
    jobs with the same batch key) and must settle every job's future."""

    def __init__(self, execute: Executor, max_waiting: int = 64, max_batch_rows: int = 8, name: str = "januspro-model") -> None:
        self._execute = execute
        self.max_waiting = max_waiting
        self.max_batch_rows = max(1, max_batch_rows)
        self._queue: deque[Job] = deque()
        self._lock = threading.Condition()
        self._running: list[Job] = []
        self._stats = SchedulerStats()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    # ------------------------------------------------------------------ client side

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new work, cancel what waits, let the running batch finish (up to `timeout`)."""
        with self._lock:
            self._stopping = True
            waiting = list(self._queue)
            self._queue.clear()
            for job in self._running:
                job.cancel_event.set()
            self._lock.notify_all()
        for job in waiting:
            job.cancel_event.set()
            job.future.cancel()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, job: Job) -> Job:
        """Queue `job`; QueueFull when `max_waiting` jobs already wait (or the server stops)."""
        with self._lock:
            if self._stopping or len(self._queue) >= self.max_waiting:
                self._stats.rejected += 1
                raise QueueFull()
            self._queue.append(job)
            self._lock.notify()
        return job

    def cancel(self, job: Job) -> bool:
        """The client of `job` has gone. Returns True if it was still waiting (and now never
        runs); running work is asked to stop."""
        with self._lock:
            job.cancel_event.set()
            try:
                self._queue.remove(job)
            except ValueError:
                return False
            self._stats.cancelled += 1
        job.future.cancel()
        return True

    def stats(self) -> SchedulerStats:
        with self._lock:
            return SchedulerStats(**{**self._stats.__dict__, "waiting": len(self._queue), "running": len(self._running)})

    # ------------------------------------------------------------------ worker side

    def _next_batch(self) -> list[Job]:
        """The oldest job and the waiting jobs that may share its batch (caller holds the lock)."""
        first = self._queue.popleft()
        batch = [first]
        if first.batch_key is not None:
            rows = first.rows
            for job in list(self._queue):
                if job.batch_key == first.batch_key and rows + job.rows <= self.max_batch_rows:
                    self._queue.remove(job)
                    batch.append(job)
                    rows += job.rows
        return batch

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                batch = [job for job in self._next_batch() if job.future.set_running_or_notify_cancel()]
                self._running = batch
                self._stats.batches += 1
                self._stats.largest_batch = max(self._stats.largest_batch, sum(j.rows for j in batch))
            try:
                if batch:
                    self._execute(batch)
            except BaseException as exc:  # noqa: BLE001 - the worker must survive anything
                log.exception("model worker failed")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
            with self._lock:
                for job in batch:
                    if not job.future.done():  # an executor bug; never leave a client hanging
                        job.future.set_exception(RuntimeError("the request was not answered"))
                    error = job.future.exception()
                    if error is None:
                        self._stats.completed += 1
                    elif isinstance(error, Cancelled):
                        self._stats.cancelled += 1
                    else:
                        self._stats.failed += 1
                self._running = []
