"""Group commit, leader and followers: the one way both backends share a transaction (and its
flush) among the changes waiting for one.

The caller that finds no batch under way leads: it takes up to ``max_batch`` waiting changes
and hands them to its backend's ``commit`` (which runs them in one transaction and marks each
done with its value or error, or returns some to be run first in the next batch), until its
own change is done. The others wait, off the GIL, for their change to be done or for their
turn to lead. SQLite's writer (:mod:`.sqlite`) and PostgreSQL's issuance batches
(:mod:`.postgres`) both run through :meth:`GroupCommit._in_group`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .base import SpentNonce

__all__ = ["Change", "GroupCommit"]


class Change:
    """One caller's change, waiting for (or done by) a group commit."""

    __slots__ = ("bare", "done", "error", "fn", "nonces", "value")

    def __init__(
        self, fn: Callable[[Any], Any], nonces: tuple[SpentNonce, ...], *, bare: bool = False
    ) -> None:
        self.fn = fn
        self.nonces = nonces
        #: ``fn`` records ``nonces`` itself and runs without a savepoint of its own (a
        #: backend that offers it: PostgreSQL's issuance in two calls).
        self.bare = bare
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """The queue of changes waiting for a group commit, and who leads (a mixin of a store)."""

    _cond: threading.Condition
    _queue: list[Change]
    _leading: bool

    def _init_group(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue = []
        self._leading = False

    def _in_group(
        self,
        change: Change,
        commit: Callable[[list[Change]], list[Change]],
        max_batch: int,
        abandoned: str,
    ) -> None:
        """Return once ``change`` is done, having led batches through ``commit`` if no one
        else was. ``commit`` marks each change of its batch done, but those it returns, which
        go first in the next batch. If ``commit`` itself fails, what it left undone is done
        with the error ``abandoned`` (its callers hear of it) and the leader's own change,
        if it was still waiting, leaves the queue with the leader's exception: no later
        leader may commit what its caller was told failed."""
        with self._cond:
            self._queue.append(change)
            while not change.done and self._leading:
                self._cond.wait()
            lead = not change.done
            if lead:
                self._leading = True
        if not lead:
            return
        batch: list[Change] = []
        try:
            while not change.done:
                with self._cond:
                    batch = self._queue[:max_batch]
                    del self._queue[:max_batch]
                again = commit(batch)
                with self._cond:
                    self._queue[:0] = again  # first in the next batch
                    self._cond.notify_all()
        finally:
            with self._cond:
                for left in batch:  # only when commit itself was interrupted
                    # (or returned for the next batch once the leader's own was done: those
                    # wait in the queue for the next leader, their callers still waiting)
                    if not left.done and left not in self._queue:
                        left.error = left.error or RuntimeError(abandoned)
                        left.done = True
                if not change.done and change in self._queue:
                    self._queue.remove(change)
                    change.done = True
                self._leading = False
                self._cond.notify_all()
