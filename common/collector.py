"""The garbage collector's settings for the data-plane processes (ingress node, edge agent).

CPython collects its youngest generation every 700 container allocations (net), and every
object of the process in a full collection now and then. Under load a request allocates
hundreds of short-lived objects, almost all freed by reference counting, so the young
collections keep walking the same in-flight requests, and a full one walks everything the
process built at start (configuration, modules, TLS contexts, aioquic's tables).
Measured with wrk at 50 connections through one ingress and one agent (bench/run.py's
topology, 10 s): ~530-590 young and 4 full collections per process, 8-10% of its CPU, each
full one 25-50 ms during which every request in flight waits. See docs/performance.md.

`tune()`, once a process has started:

- `gc.freeze()`: what start-up built moves to the permanent generation, which no collection
  walks again;
- the youngest generation is collected every `YOUNG` allocations instead of 700 (the cycles
  it finds are few: tasks, futures and exceptions that refer to themselves), the older ones
  at CPython's ratios.
"""

from __future__ import annotations

import gc

YOUNG = 20_000
MIDDLE = 10
OLD = 10


def tune() -> None:
    """Freeze what exists now and collect less often; call once, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
