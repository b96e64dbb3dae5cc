"""What the commands do, as functions over their collaborators.

Each workflow takes a ``Session`` (``session``: the pipeline, the results database,
an index, a ``Reporter`` for progress, the target and the run configuration, and the
one way combinations are run, deepened and recorded) and returns a value; it never
parses arguments or prints. ``steps`` holds what they share besides: choosing the
target and planning.

- ``scan``: plan, shard, skip what is done, run, record, summarise (and JUnit XML)
- ``check``: one explicit set of pins
- ``lock``: the best known-good combination of a base, written as lockfiles; the
  image of a lock directory, built, smoke-tested, measured and recorded
- ``nightly``: only what the index published since the last night
- ``bisect``: the smallest set of package changes that explains a failure
- ``deep``: the deep tier (dependents' own tests, against a baseline) for passing results
"""
