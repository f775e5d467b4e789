"""Long batch work that a person waits on: progress that shows in a terminal *and* in a log or a
pipe, and process pools that stop when they are interrupted.

tqdm draws a bar on a terminal and turns itself off when the output is piped or logged (a job on
a cluster, `vibraclip identify ... | tee`); `Progress` adds a log line every `every_s` seconds
either way, from a timer thread, so long work is never silent, not even while an ordered
`pool.map` waits behind one slow molecule and nothing calls `update()`. `spawn_pool` starts a
pool whose workers leave Ctrl-C to the parent, and `stop_pool` ends a pool at once on Ctrl-C:
queued work is dropped and the workers are terminated, instead of the pool finishing its queue
(a library build used to run on for more than a minute after two Ctrl-C). Callers write each
result as it arrives, so what finished before the interrupt stays cached and a rerun resumes.
Torch-free.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Callable, Iterable

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 30.0  # a log line this often while work runs


def bar_disable(progress: bool) -> bool | None:
    """tqdm's `disable=`: True when `progress` is off or TQDM_DISABLE asks for no bars (batch
    runs such as the book set it; an explicit disable= overrides tqdm's own handling of it),
    else None (tqdm decides: off without a terminal)."""
    off = not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return True if off else None


class Progress:
    """A tqdm bar (None-disable: off without a terminal) plus a log line at WARNING at least
    every `every_s` seconds ("<desc>: 120 of 2000 mol (31 s)"; None: PROGRESS_EVERY_S), written
    by `update()` or, when no update comes, by a timer thread; `progress=False` silences both.
    Use it as a context manager (or call `close()`): closing stops the timer."""

    def __init__(self, total: int, desc: str, unit: str = "mol", progress: bool = True,
                 every_s: float | None = None, logger: logging.Logger = log) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.progress, self.logger = progress, logger
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=bar_disable(progress))
        self.n = 0
        self.t0 = self.last = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer = None
        if progress and self.every_s > 0:
            self._timer = threading.Thread(target=self._tick, name=f"progress: {desc}",
                                           daemon=True)
            self._timer.start()

    def _line(self, now: float) -> None:
        self.last = now
        self.logger.warning("%s: %d of %d %s (%.0f s)", self.desc, self.n, self.total,
                            self.unit, now - self.t0)

    def _tick(self) -> None:
        """The timer: a line whenever every_s passed since the last one, until closed."""
        while not self._stop.wait(max(0.05, self.every_s - (time.monotonic() - self.last))):
            with self._lock:
                now = time.monotonic()
                if now - self.last >= self.every_s and not self._stop.is_set():
                    self._line(now)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.bar.update(n)
        with self._lock:
            now = time.monotonic()
            if self.progress and now - self.last >= self.every_s:
                self._line(now)

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=1.0)
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ignore_interrupt(initializer: Callable[[], None] | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer()


def _started() -> None:
    """The no-op task that makes a pool start a worker."""


def spawn_pool(workers: int, initializer: Callable[[], None] | None = None
               ) -> ProcessPoolExecutor:
    """A process pool (spawn context: forking after torch's OpenMP can deadlock) whose
    `workers` processes are started now with Ctrl-C blocked, and ignore it for good: a terminal
    sends SIGINT to the whole process group, and a worker would print its own
    KeyboardInterrupt traceback (also while it still imports); the parent stops the pool
    (`stop_pool`) instead. `initializer` runs in each worker after that (e.g.
    simulate.limit_threads)."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_interrupt, initargs=(initializer,))
    block = hasattr(signal, "pthread_sigmask")
    # a process inherits the signal mask of the thread that starts it, across exec
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if block else None
    try:
        for _ in range(workers):  # each submit starts one more worker while none is idle
            pool.submit(_started)
    finally:
        if block:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pool


def stop_pool(pool: Executor, futures: Iterable[Future] = ()) -> None:
    """Drop the queued work of a process pool and terminate its workers now (for Ctrl-C and
    other errors); a running task's partial result is lost, finished ones are not."""
    for fut in futures:
        fut.cancel()
    workers = getattr(pool, "_processes", None) or {}  # ProcessPoolExecutor's; none for threads
    for proc in list(workers.values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
