"""The Evaluator port: expressions not bounded in cost, run in worker processes under a
time limit."""

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from engine.core.expressions import ExpressionError

_WORKER_START_SECONDS = 60.0
_WORKER_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name in ("PATH", "PYTHONPATH", "LANG")
}


class _TimedOut(Exception):
    pass


class _Died(Exception):
    pass


class _Worker:
    """One evaluator process (`python -m engine._expression_worker`) and a socket to it.

    A plain subprocess, not `multiprocessing`: nothing of the engine's own main module
    runs again in it, and killing it is a signal to one process."""

    def __init__(self, process: "subprocess.Popen[bytes]", conn: Connection) -> None:
        self._process = process
        self._conn = conn

    @classmethod
    def start(cls, memory_bytes: int) -> "_Worker":
        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(  # noqa: S603  # this interpreter, a module of ours
                [
                    sys.executable,
                    "-m",
                    "engine._expression_worker",
                    str(theirs.fileno()),
                    str(memory_bytes),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_WORKER_ENVIRONMENT,  # none of the engine's settings, secrets least of all
            )
        worker = cls(process, Connection(ours.detach()))
        try:
            ready = worker._conn.poll(_WORKER_START_SECONDS) and worker._conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            worker.stop()
            raise RuntimeError("an expression worker did not start")
        return worker

    def alive(self) -> bool:
        return self._process.poll() is None

    def run(self, request: Any, seconds: float) -> Any:
        """Send a request and wait for its answer (in a thread: this blocks)."""
        try:
            self._conn.send(request)
            if not self._conn.poll(seconds):
                raise _TimedOut
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            raise _Died from exc

    def stop(self) -> None:
        self._process.kill()
        self._process.wait(5)
        self._conn.close()


class ExpressionWorkers:
    """Evaluates expressions not bounded in cost in worker processes, under a time limit.

    The event loop only waits for an answer; a worker that runs out of time (or memory)
    is killed and replaced. Workers start at first use and are kept.
    """

    def __init__(self, processes: int, time_limit_seconds: float, memory_bytes: int) -> None:
        self._processes = processes
        self._limit = time_limit_seconds
        self._memory = memory_bytes
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._busy: set[_Worker] = set()
        self.replaced = 0

    async def __call__(
        self, expressions: Sequence[tuple[str, str]], context: dict[str, Any], assigns: bool
    ) -> dict[str, Any]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._processes):
                self._idle.put_nowait(None)
        worker = await self._idle.get()
        try:
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.stop()
                worker = await asyncio.to_thread(_Worker.start, self._memory)
            self._busy.add(worker)
            request = (list(expressions), context, assigns)
            kind, payload = await asyncio.to_thread(worker.run, request, self._limit)
        except _TimedOut:
            self._replace(worker)
            worker = None
            sources = "; ".join(source for _, source in expressions)[:200]
            raise ExpressionError(
                f"`{sources}`: cut off after {self._limit * 1000:.0f} ms, "
                "the time budget of an expression"
            ) from None
        except asyncio.CancelledError:  # the thread still waits on it: never reuse it
            self._replace(worker)
            worker = None
            raise
        except _Died:
            self._replace(worker)
            worker = None
            raise ExpressionError(
                "the expression stopped its evaluator (over its memory budget?)"
            ) from None
        finally:
            if worker is not None:
                self._busy.discard(worker)
            self._idle.put_nowait(worker)
        if kind == "error":
            raise ExpressionError(payload)
        return dict(payload)

    def _replace(self, worker: _Worker | None) -> None:
        if worker is not None:
            self._busy.discard(worker)
            worker.stop()
        self.replaced += 1

    async def close(self) -> None:
        """Stop every worker (the engine is shutting down)."""
        workers = list(self._busy)
        while self._idle is not None and not self._idle.empty():
            worker = self._idle.get_nowait()
            if worker is not None:
                workers.append(worker)
        for worker in workers:
            await asyncio.to_thread(worker.stop)
