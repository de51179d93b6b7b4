"""How a node's or an agent's status is judged from its evidence, and how often a change of it
may be logged. Pure functions: no database, no clock of their own.

The evidence:
- heartbeat: a status message arrived within `stale_after` (3 heartbeat intervals) on a channel
  that is still open;
- problems: what the process itself reports as wrong (certificate expiring, an origin
  unreachable, …), plus what the control plane derives from its report (an ingress node with
  no agent connected although it routes services; an agent connected to no ingress node
  although it has some to use);
- health (ingress nodes with a readiness check only): True after a successful check, False
  after `health_check_failures` consecutive failed ones, None while there is no verdict.

The verdict:

| heartbeat | health           | problems | status   |
|-----------|------------------|----------|----------|
| fresh     | ok / none        | none     | online   |
| fresh     | ok / none        | some     | degraded |
| fresh     | failing          | any      | degraded |
| missing   | ok               | any      | degraded |
| missing   | failing / none   | any      | offline  |

A subject that never reported and has no verdict from a readiness check stays `unknown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Judged = Literal["unknown", "online", "degraded", "offline"]
EVENT_WINDOW = timedelta(hours=1)
MAX_DETAIL = 500


@dataclass(frozen=True, slots=True)
class Evidence:
    heartbeat: bool
    ever_reported: bool
    problems: tuple[str, ...] = ()
    health: bool | None = None
    health_detail: str = ""
    silence: str = ""  # why there is no heartbeat ("control channel closed", …)


def judge(evidence: Evidence) -> tuple[Judged, str]:
    """(status, detail) for `evidence`, as the table in the module docstring says."""
    notes: list[str] = []
    if evidence.health is False:
        notes.append(f"readiness check failed: {evidence.health_detail}")
    if not evidence.heartbeat:
        if evidence.health is True:
            status: Judged = "degraded"
            notes.append(f"{evidence.silence or 'no control channel'}; readiness check passes")
        elif evidence.ever_reported or evidence.health is False:
            status = "offline"
            if evidence.silence:
                notes.insert(0, evidence.silence)
        else:
            status = "unknown"
    else:
        notes.extend(evidence.problems)
        status = "degraded" if notes else "online"
    return status, "; ".join(notes)[:MAX_DETAIL]


@dataclass(slots=True)
class EventBudget:
    """Status-change events of one subject: at most `limit` per hour are logged, the others
    counted and reported by the next event that is logged (flapping cannot flood the log)."""

    window_start: datetime | None
    in_window: int
    suppressed: int

    def spend(self, now: datetime, limit: int) -> bool:
        """True if an event may be logged now (and count it); False counts it as suppressed."""
        if self.window_start is None or now - self.window_start >= EVENT_WINDOW:
            self.window_start, self.in_window = now, 0
        if self.in_window < limit:
            self.in_window += 1
            return True
        self.suppressed += 1
        return False
