"""Every table, imported in one place so that metadata is complete (Alembic, tests)."""

from corespond.agencies.models import Agency
from corespond.alerts.models import Alert
from corespond.assignments.models import Assignment, AssignmentChange, PeerRequest
from corespond.audit.models import AuditEntry, RetiredChainKey
from corespond.auth.models import ApiKey, WebSession
from corespond.calls.models import Call
from corespond.db import Base
from corespond.directory.models import DirectoryOrganization, DirectoryService
from corespond.dispatch.models import DeliveryAttempt, OutboxMessage
from corespond.followups.models import FollowUp
from corespond.ingest.models import CadEvent
from corespond.notify.models import Notification, PushKey, PushSubscription
from corespond.peerapp.models import PeerSignIn
from corespond.people.models import Consent, ConsentShare, Contact, Person, Referral
from corespond.roster.models import (
    Credential,
    Peer,
    PeerStatusChange,
    Provider,
    ProviderCounty,
    Shift,
    ShiftChange,
)
from corespond.sources.models import CadSource, CadSourceSecret
from corespond.triage.models import TriageDecisionRecord

metadata = Base.metadata

__all__ = [
    "Agency",
    "Alert",
    "ApiKey",
    "Assignment",
    "AssignmentChange",
    "AuditEntry",
    "CadEvent",
    "CadSource",
    "CadSourceSecret",
    "Call",
    "Consent",
    "ConsentShare",
    "Contact",
    "Credential",
    "DeliveryAttempt",
    "DirectoryOrganization",
    "DirectoryService",
    "FollowUp",
    "Notification",
    "OutboxMessage",
    "Peer",
    "PeerRequest",
    "PeerSignIn",
    "PeerStatusChange",
    "Person",
    "Provider",
    "ProviderCounty",
    "PushKey",
    "PushSubscription",
    "Referral",
    "RetiredChainKey",
    "Shift",
    "ShiftChange",
    "TriageDecisionRecord",
    "WebSession",
    "metadata",
]
