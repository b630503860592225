"""Settings every test shares.

Hypothesis's default 200 ms deadline per example measures the machine, not the
code: on two cores loaded by another process, property tests that pass alone
missed it. Tests state correctness; `bench/` measures speed.
"""

from hypothesis import settings

settings.register_profile("fedcart", deadline=None)
settings.load_profile("fedcart")
