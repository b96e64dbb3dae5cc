"""What the commands do, as functions over their collaborators.

Each workflow takes what it works with (a ``Pipeline``, the results database, an index,
a ``Reporter`` for progress) and returns a value; it never parses arguments or
prints. ``steps`` holds what they share: choosing the target, planning, and running
combinations inside a recorded run, each result stored as it lands.

- ``scan``: plan, shard, skip what is done, run, record, summarise (and JUnit XML)
- ``check``: one explicit set of pins
- ``lock``: the best known-good combination of a base, written as lockfiles; the
  image of a lock directory, built, smoke-tested, measured and recorded
- ``nightly``: only what the index published since the last night
- ``bisect``: the smallest set of package changes that explains a failure
- ``deep``: the deep tier (dependents' own tests, against a baseline) for passing results
"""
