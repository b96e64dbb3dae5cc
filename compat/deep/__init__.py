"""The deep tier, host side: the dependents' own shipped tests run where the
combinations run (by the in-environment runner, :mod:`compat.smoke.deep`), judged
differentially against baselines, cached in the results database.

- :mod:`.running`: the runner's jobs run through the pipeline; what they give.
- :mod:`.outcomes`: the runner's events as values (per-test outcomes, frames).
- :mod:`.baseline`: which combination a dependent release is compared against.
- :mod:`.differential`: regression, flaky or not attributed; which partner.
- :mod:`.report`: the check results ``deep:<dependent>:<test id>``.
- :mod:`.judging`: the verdict on one dependent, merged into a result.
- :mod:`.keys`: what a run and a baseline are cached under.
- :mod:`.step`: the tier as one step of a run (``deepen``).
- :mod:`.imports`: failed whole-package imports judged against their baselines.
"""
