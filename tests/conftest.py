"""Shared pytest configuration.

Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE``; without it ``ci`` when ``CI`` is set,
else ``dev``. ``ci`` is small and has no deadline (the machine is shared and slow timing must
not fail a test); ``dev`` explores more.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=False, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
