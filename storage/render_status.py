"""The life of a render job as a small state machine, with no database in sight.

A render is queued, runs, and ends exactly once. Keeping the allowed moves in one table
lets the repository guard every status change with the same check, and lets the tests
walk every pair of states.
"""

from __future__ import annotations

from typing import Literal, get_args

from .errors import InvalidTransitionError

RenderStatus = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
RenderKind = Literal["render", "regenerate", "vary", "extend"]

RENDER_STATUSES: tuple[RenderStatus, ...] = get_args(RenderStatus)
RENDER_KINDS: tuple[RenderKind, ...] = get_args(RenderKind)

# "interrupted" is reached only by start-up recovery (a job the killed process had queued or
# was running) and by the studio's worker supervisor (a job whose worker died). Nothing
# resumes it behind the user's back; they render again (Retry).
ALLOWED_TRANSITIONS: dict[RenderStatus, frozenset[RenderStatus]] = {
    "queued": frozenset({"running", "cancelled", "interrupted"}),
    "running": frozenset({"done", "failed", "cancelled", "interrupted"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "interrupted": frozenset(),
}
FINISHED_STATUSES: frozenset[RenderStatus] = frozenset(s for s, moves in ALLOWED_TRANSITIONS.items() if not moves)
UNFINISHED_STATUSES: tuple[RenderStatus, ...] = tuple(s for s in RENDER_STATUSES if s not in FINISHED_STATUSES)


def check_transition(render_id: int, current: RenderStatus, new: str) -> RenderStatus:
    """`new` as a status if `current -> new` is allowed; otherwise says why not."""
    if new not in RENDER_STATUSES:
        raise InvalidTransitionError(
            f"render {render_id}: unknown status {new!r}; use one of {', '.join(RENDER_STATUSES)}"
        )
    if current in FINISHED_STATUSES:
        raise InvalidTransitionError(
            f"render {render_id} is already {current} and can never change again; start a new render instead"
        )
    if new not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current]))
        raise InvalidTransitionError(f"render {render_id} is {current}; it can only become {allowed}, not {new}")
    return new
