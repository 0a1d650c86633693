"""hypothesis settings for the tests that fuzz the API."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def reproducible(examples: int) -> settings:
    """The same cases on every run, so that a failure is reproducible; no deadline, as a request
    to a real database has no steady time."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
