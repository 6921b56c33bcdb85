"""Where the layers above annotations plug into it.

Imports run one way (accounts, jobs <- annotations <- training <- inference): annotations never imports training
or inference. Where an event down here must start work up there, or an annotations API must show what an upper
layer keeps, the upper app registers a function here in its `AppConfig.ready`; with nothing registered (an app
left out, a unit test of annotations alone) the event simply has no follow-up.

- `labels_settled()`: after the commit of a transaction that settled labels (a consensus run, an expert's or an
  accepted prediction's decision, an import). training registers the automatic-retraining check.
- `expert_decided(imagette_id=…)`: inside the transaction of an expert's decision (or an accepted prediction), so
  that what it does commits or rolls back with the decision. inference registers "the item's predictions are
  reviewed": it leaves the review queue in the same commit.
- `prediction_prefetch()`: the Prefetch that attaches the active model's current prediction to imagettes (as
  `active_predictions`), or None. inference registers it; the imagette APIs use it to show the model's
  suggestion without importing the models that hold it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


class Hook:
    """An event with the functions registered for it, called in registration order. Registering the same
    function twice keeps one (AppConfig.ready may run more than once in tests)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._functions: list[Callable[..., Any]] = []
        self._lock = threading.Lock()
        self._held = threading.local()

    def register(self, function: Callable[..., Any]) -> Callable[..., Any]:
        with self._lock:
            if function not in self._functions:
                self._functions.append(function)
        return function

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        if getattr(self._held, "depth", 0):
            self._held.called = True  # made once, at the end of the batch (`once_after`)
            return
        for function in list(self._functions):
            function(*args, **kwargs)

    @contextmanager
    def once_after(self) -> Iterator[None]:
        """Within the block (in this thread), calls of this argument-less hook are held and made once when it ends,
        if any came: a batch that settles labels item by item (an ingest of imported labels) asks the layers
        above once, not once per item."""
        self._held.depth = getattr(self._held, "depth", 0) + 1
        try:
            yield
        finally:
            self._held.depth -= 1
            if not self._held.depth and getattr(self._held, "called", False):
                self._held.called = False
                try:
                    self()
                except Exception:  # as on_commit(robust=True) would: a failing follow-up never fails the batch
                    log.exception("hook %s failed after a batch", self.name)


class Provider:
    """One function an upper layer provides (the last one registered wins); None when nobody has."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._function: Callable[..., Any] | None = None

    def register(self, function: Callable[..., Any]) -> Callable[..., Any]:
        self._function = function
        return function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs) if self._function is not None else None


labels_settled = Hook("labels_settled")
expert_decided = Hook("expert_decided")
prediction_prefetch = Provider("prediction_prefetch")
