"""The assignments domain's problems, each with its HTTP status (see ``corespond.errors``)."""

from __future__ import annotations

from typing import ClassVar

from corespond.errors import Conflict


class NoCoverage(Conflict):
    """No peer could be offered the call; the unfilled request is recorded and dispatch told."""

    slug = "no-coverage"
    title = "No peer available"
    keeps_changes: ClassVar[bool] = True


class CallNotRequestable(Conflict):
    slug = "call-not-requestable"
    title = "A peer cannot be requested for this call"


class AssignmentConflict(Conflict):
    slug = "assignment-conflict"
    title = "The assignment is not in a state that allows this"


class SceneNotSecure(Conflict):
    slug = "scene-not-secure"
    title = "The scene has not been reported secure"


class OfferExpired(Conflict):
    slug = "offer-expired"
    title = "The offer expired"
    keeps_changes: ClassVar[bool] = True


class PeerNotEligible(Conflict):
    slug = "peer-not-eligible"
    title = "The peer cannot be offered this call"


class CancelledForDanger(Conflict):
    slug = "cancelled-danger"
    title = "The assignment was cancelled: the call now reports danger"
    keeps_changes: ClassVar[bool] = True
