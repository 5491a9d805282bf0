"""Helpers for testing code that uses the Labs clients.

``instant_retries()`` turns every client-side wait (retry backoff, ``Retry-After``, rate-limit
pacing) into a no-op for the duration of a ``with`` block and records the waits it skipped, so
tests of retry behaviour run in milliseconds without patching private functions.
"""

from __future__ import annotations

from labs_env.client.retry import instant_retries

__all__ = ["instant_retries"]
