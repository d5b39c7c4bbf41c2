"""Hypothesis profiles: `make test` runs a short fuzz, `make fuzz` a long one, `make mutate` a
very short one."""

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "fuzz", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
# `make mutate` runs the unit suite once per mutant: a few examples each are enough there.
settings.register_profile("mutate", max_examples=25, deadline=None)
settings.load_profile("default")
