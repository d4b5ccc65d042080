"""What a request for matching runs with: the program's policy, the map and the time now."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from corespond.assignments.policy import Context, MatchPolicy


def context(request: Request) -> Context:
    """What matching runs with for this request: policy, map, and the time now."""
    return Context(
        MatchPolicy.of(request.app.state.settings),
        request.app.state.geography,
        request.app.state.clock(),
    )


Ctx = Annotated[Context, Depends(context)]
