"""The retry policy: tenacity, only on RetriableError, exponential backoff from settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from passport_sync.config import RetryConfig
from passport_sync.errors import RetriableError

log = logging.getLogger("passport_sync")
T = TypeVar("T")


def retrying(cfg: RetryConfig, what: str) -> Retrying:
    """A tenacity policy; ``reraise=True`` so callers see our exception, not RetryError."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s: %s; retrying in %.1fs (attempt %d of %d)", what, exc, wait, state.attempt_number, cfg.attempts)

    return Retrying(
        retry=retry_if_exception_type(RetriableError),
        stop=stop_after_attempt(cfg.attempts),
        wait=wait_exponential(multiplier=cfg.initial_wait_seconds, max=cfg.max_wait_seconds),
        reraise=True,
        before_sleep=before_sleep,
    )


def call_with_retry(cfg: RetryConfig, what: str, fn: Callable[[], T]) -> T:
    return retrying(cfg, what)(fn)
