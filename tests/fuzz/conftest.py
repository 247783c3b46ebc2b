from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

# CI-sized: bounded examples, a per-example deadline that catches a hang (or a quadratic blow-up)
# without flaking on a loaded two-core machine. `HYPOTHESIS_PROFILE=long` for a deeper local run.
settings.register_profile("ci", max_examples=300, deadline=2000, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=20_000, deadline=2000,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

