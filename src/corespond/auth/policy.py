"""Who may call which endpoint: one table, enforced in one place (``auth.deps.authorized``).

Each entry names the roles allowed (``admin`` always is) and the scope rule the endpoint's
service applies within them. Endpoints that take no API key say why. A test fails for any
route of the application that has no entry here, so a new endpoint cannot ship without a
rule.
"""

from __future__ import annotations

from dataclasses import dataclass

ANY_ROLE = ("dispatcher", "peer", "supervisor", "provider_admin", "auditor")


@dataclass(frozen=True)
class Rule:
    roles: tuple[str, ...] = ()
    scope: str = "unscoped"
    public: str | None = None  # why no API key is needed (None: a key is)


def key(*roles: str, scope: str = "unscoped") -> Rule:
    return Rule(roles=roles, scope=scope)


def public(why: str) -> Rule:
    return Rule(public=why)


CALLS_SCOPE = "an agency- or county-scoped key sees that agency's or county's calls"
ROSTER_SCOPE = "a provider-scoped key sees and changes only its provider's roster"
PEERS_SCOPE = (
    "a provider-scoped key sees its provider's peers; a county- or agency-scoped key the "
    "peers of the providers serving that county; phone, home and credential references are "
    "for the provider, supervisors and admins"
)
OWN = "a peer key acts only on that peer's own assignments"
COUNTY = "a county-scoped key sees its county; other scopes are refused"
SOURCE = "a cad_integrator key (scope source:ID) reaches its own source; admins any"

PEOPLE_SCOPE = (
    "the person's peer provider (its peers, its provider admin) reads the whole record; a "
    "partner key (agency:NAME, police; organization:ID, a treatment provider or QRT) only "
    "what a live consent naming it shares; anyone else (dispatchers, supervisors, other "
    "providers, admins) 404"
)
PROVIDER_RECORDS = (
    "the records of the key's own peer provider only (a peer's, through its peer; a "
    "provider admin's, its provider scope); others 404"
)

ALERTS_SCOPE = (
    "a county-scoped key sees and acknowledges its county's alerts (statewide ones, CAD "
    "deliveries, are for unscoped keys); other scopes are refused"
)

POLICY: dict[str, Rule] = {
    # Operations and the CAD webhook.
    "GET /healthz": public("health probe"),
    "GET /readyz": public("readiness probe"),
    "HEAD /healthz": public("health probe of a load balancer"),
    "HEAD /readyz": public("readiness probe of a load balancer"),
    "GET /metrics": public(
        "Prometheus scrape (no call data); in production only with CORESPOND_METRICS_TOKEN"
    ),
    "POST /v1/cad/{source}/events": public("signed with the CAD source's secret"),
    "POST /v1/cad/{source}/eido": public("signed with the CAD source's secret"),
    # Calls.
    "GET /v1/calls": key("dispatcher", "supervisor", scope=CALLS_SCOPE),
    "GET /v1/calls/{call_id}": key("dispatcher", "supervisor", scope=CALLS_SCOPE),
    "POST /v1/calls/{call_id}/peer-requests": key("dispatcher", "supervisor", scope=CALLS_SCOPE),
    "POST /v1/calls/{call_id}/danger-override": key("supervisor", scope=CALLS_SCOPE),
    # Triage and geography: reference data, any key.
    "POST /v1/triage/classify": key(*ANY_ROLE),
    "GET /v1/counties": key(*ANY_ROLE),
    "GET /v1/counties/{fips}": key(*ANY_ROLE),
    "GET /v1/agencies": key(*ANY_ROLE),
    # Rosters.
    "GET /v1/providers": key("dispatcher", "supervisor", "provider_admin", "auditor"),
    "POST /v1/providers": key(),
    "GET /v1/providers/{provider_id}": key("dispatcher", "supervisor", "provider_admin", "auditor"),
    "PUT /v1/providers/{provider_id}/counties": key(),
    "GET /v1/peers": key("supervisor", "provider_admin", "auditor", scope=PEERS_SCOPE),
    "POST /v1/peers": key("provider_admin", scope=ROSTER_SCOPE),
    "GET /v1/peers/credentials/expiring": key(
        "supervisor", "provider_admin", "auditor", scope=PEERS_SCOPE
    ),
    "GET /v1/peers/{peer_id}": key("supervisor", "provider_admin", "auditor", scope=PEERS_SCOPE),
    "PATCH /v1/peers/{peer_id}": key("provider_admin", scope=ROSTER_SCOPE),
    "PUT /v1/peers/{peer_id}/credentials/{kind}": key("provider_admin", scope=ROSTER_SCOPE),
    "POST /v1/peers/{peer_id}/status": key(
        "peer",
        "supervisor",
        "provider_admin",
        scope="a peer key sets only its own status; a provider admin its provider's peers'; "
        "a scoped supervisor the peers it may see",
    ),
    "GET /v1/shifts": key(
        "dispatcher", "supervisor", "provider_admin", "auditor", scope=ROSTER_SCOPE
    ),
    "POST /v1/shifts": key("provider_admin", scope=ROSTER_SCOPE),
    "GET /v1/shifts/{shift_id}": key(
        "dispatcher", "supervisor", "provider_admin", "auditor", scope=ROSTER_SCOPE
    ),
    "PATCH /v1/shifts/{shift_id}": key("provider_admin", scope=ROSTER_SCOPE),
    "DELETE /v1/shifts/{shift_id}": key("provider_admin", scope=ROSTER_SCOPE),
    "GET /v1/shifts/{shift_id}/history": key(
        "dispatcher", "supervisor", "provider_admin", "auditor", scope=ROSTER_SCOPE
    ),
    "POST /v1/rosters/import": key("provider_admin", scope=ROSTER_SCOPE),
    # Assignments.
    "GET /v1/assignments": key("dispatcher", "peer", "supervisor", scope=f"{CALLS_SCOPE}; {OWN}"),
    "GET /v1/assignments/{assignment_id}": key(
        "dispatcher", "peer", "supervisor", scope=f"{CALLS_SCOPE}; {OWN}"
    ),
    "POST /v1/assignments/{assignment_id}/accept": key("peer", "supervisor", scope=OWN),
    "POST /v1/assignments/{assignment_id}/decline": key("peer", "supervisor", scope=OWN),
    "POST /v1/assignments/{assignment_id}/en-route": key("peer", "supervisor", scope=OWN),
    "POST /v1/assignments/{assignment_id}/on-scene": key("peer", "supervisor", scope=OWN),
    "POST /v1/assignments/{assignment_id}/clear": key("peer", "supervisor", scope=OWN),
    "POST /v1/assignments/{assignment_id}/cancel": key(
        "dispatcher", "supervisor", scope=CALLS_SCOPE
    ),
    "POST /v1/assignments/{assignment_id}/scene-secure": key(
        "dispatcher", "supervisor", scope=CALLS_SCOPE
    ),
    "POST /v1/assignments/{assignment_id}/reassign": key(
        "supervisor",
        scope=f"{CALLS_SCOPE}; the new peer as the key may see peers ({PEERS_SCOPE})",
    ),
    "GET /v1/assignments/{assignment_id}/candidates": key("supervisor", scope=CALLS_SCOPE),
    # Push to dispatch.
    "GET /v1/deliveries": key("supervisor", "cad_integrator"),
    "GET /v1/deliveries/sources": key("supervisor"),
    "GET /v1/deliveries/{delivery_id}": key("supervisor", "cad_integrator"),
    "POST /v1/deliveries/{delivery_id}/redeliver": key("supervisor", "cad_integrator"),
    # CAD integration: an integrator's key reaches its own source only.
    "GET /v1/cad/{source}": key("cad_integrator", scope=SOURCE),
    "PATCH /v1/cad/{source}": key("cad_integrator", scope=SOURCE),
    "PUT /v1/cad/{source}/mapping": key("cad_integrator", scope=SOURCE),
    "GET /v1/cad/{source}/mapping/targets": key("cad_integrator", scope=SOURCE),
    "POST /v1/cad/{source}/mapping/preview": key("cad_integrator", scope=SOURCE),
    "POST /v1/cad/{source}/secrets": key("cad_integrator", scope=SOURCE),
    "POST /v1/cad/{source}/test-delivery": key("cad_integrator", scope=SOURCE),
    "GET /v1/cad/{source}/calls": key("cad_integrator", scope=SOURCE),
    "GET /v1/cad/{source}/changes": key("cad_integrator", scope=SOURCE),
    # Coverage.
    "GET /v1/coverage": key("supervisor", scope=COUNTY),
    "GET /v1/coverage/gaps": key("supervisor", scope=COUNTY),
    "GET /v1/coverage/summary": key("supervisor", scope=COUNTY),
    "GET /v1/coverage/counties/{county}": key(
        "supervisor", scope=f"{COUNTY} (another county: 404)"
    ),
    # Alerts.
    "GET /v1/alerts": key("supervisor", scope=ALERTS_SCOPE),
    "GET /v1/alerts/{alert_id}": key("supervisor", scope=ALERTS_SCOPE),
    "POST /v1/alerts/{alert_id}/acknowledge": key("supervisor", scope=ALERTS_SCOPE),
    # Reports.
    "GET /v1/reports/program": key("supervisor", scope=COUNTY),
    # After the call: people and consent, contacts, referrals, follow-ups, the directory.
    "POST /v1/assignments/{assignment_id}/contact": key(
        "peer", scope=f"{OWN}; the person's record is the peer's provider's"
    ),
    "GET /v1/people": key("peer", "provider_admin", "partner", scope=PEOPLE_SCOPE),
    "GET /v1/people/{person_id}": key("peer", "provider_admin", "partner", scope=PEOPLE_SCOPE),
    "GET /v1/people/{person_id}/duplicates": key("peer", "provider_admin", scope=PROVIDER_RECORDS),
    "POST /v1/people/{person_id}/merge": key("peer", "provider_admin", scope=PROVIDER_RECORDS),
    "POST /v1/people/{person_id}/consents": key(
        "peer", scope=f"{PROVIDER_RECORDS}; signed on the phone of a peer with the person"
    ),
    "POST /v1/people/{person_id}/consent/revoke": key(
        "peer", "provider_admin", scope=PROVIDER_RECORDS
    ),
    "POST /v1/people/{person_id}/followups": key("peer", "provider_admin", scope=PROVIDER_RECORDS),
    "GET /v1/contacts/{contact_id}": key("peer", "provider_admin", scope=PROVIDER_RECORDS),
    "POST /v1/contacts/{contact_id}/referrals": key(
        "peer", "provider_admin", scope=PROVIDER_RECORDS
    ),
    "POST /v1/referrals/{referral_id}/arrival": key(
        "peer", "provider_admin", scope=PROVIDER_RECORDS
    ),
    "GET /v1/followups": key(
        "peer",
        "provider_admin",
        scope=f"{PROVIDER_RECORDS}; a peer sees its own and its team's (unassigned)",
    ),
    "POST /v1/followups/{followup_id}/outcome": key(
        "peer", "provider_admin", scope=PROVIDER_RECORDS
    ),
    "POST /v1/followups/{followup_id}/assign": key(
        "peer",
        "provider_admin",
        scope=f"{PROVIDER_RECORDS}; a peer takes a team task or gives its own back",
    ),
    "GET /v1/directory/services": key(*ANY_ROLE, "partner"),
    "GET /v1/directory/services/{service_id}": key(*ANY_ROLE, "partner"),
    "POST /v1/directory/import": key("supervisor"),
    "GET /dispatch": public("a sign-in form, or the console for a dispatcher's session"),
    "POST /dispatch/login": public("checks the key it is given (dispatcher, supervisor, admin)"),
    "POST /dispatch/logout": public("ends the session of its cookie"),
    "GET /dispatch/data": public("a dispatcher's session cookie; calls in its key's scope"),
    "GET /dispatch/events": public("a dispatcher's session cookie, checked by the page"),
    "POST /dispatch/calls/{call_id}/request": public(
        "a dispatcher's session cookie; the key's call scope, as the API's peer request"
    ),
    "POST /dispatch/assignments/{assignment_id}/scene-secure": public(
        "a dispatcher's session cookie; the key's call scope, as the API's"
    ),
    "POST /dispatch/assignments/{assignment_id}/cancel": public(
        "a dispatcher's session cookie; the key's call scope, as the API's"
    ),
    "GET /dispatch/static/{name}": public("the console's script and style"),
    "GET /supervisor": public("a sign-in form, or the page for a supervisor's session"),
    "POST /supervisor/login": public("checks the key it is given (supervisor or admin)"),
    "POST /supervisor/logout": public("ends the session of its cookie"),
    "GET /supervisor/data": public("a supervisor's session cookie, checked by the page"),
    "GET /supervisor/static/{name}": public("the page's script and style"),
    "GET /supervisor/sw.js": public("the page's service worker (shows a pushed notice)"),
    "POST /supervisor/push-subscriptions": public(
        "a supervisor's session cookie, checked by the page"
    ),
    "POST /supervisor/contact": public("a supervisor's session cookie, checked by the page"),
    "GET /supervisor/events": public("a supervisor's session cookie, checked by the page"),
    "GET /supervisor/counties/{fips}": public(
        "a supervisor's session cookie; the key's county scope, as the API's drill-down"
    ),
    "GET /supervisor/assignments/{assignment_id}/candidates": public(
        "a supervisor's session cookie; the key's call scope, as the API's"
    ),
    "POST /supervisor/assignments/{assignment_id}/reassign": public(
        "a supervisor's session cookie; the key's call and peer scope, as the API's"
    ),
    "POST /supervisor/assignments/{assignment_id}/cancel": public(
        "a supervisor's session cookie; the key's call scope, as the API's"
    ),
    "POST /supervisor/calls/{call_id}/danger-override": public(
        "a supervisor's session cookie; the key's call scope, as the API's"
    ),
    "POST /supervisor/alerts/{alert_id}/acknowledge": public(
        "a supervisor's session cookie; the key's county scope, as the API's"
    ),
    "GET /supervisor/reports": public(
        "a supervisor's session cookie (else sent to sign in); the key's counties, as the API's"
    ),
    "GET /supervisor/reports.csv": public(
        "a supervisor's session cookie, checked by the page; the key's counties, as the API's"
    ),
    "GET /supervisor/reports/static/{name}": public("the reports page's script and style"),
    # The peer app: its pages take a peer's session cookie (from a one-time sign-in link).
    # A link is the peer's identity (its provider's people): never a supervisor's to make.
    "POST /v1/peers/{peer_id}/sign-in-links": key(
        "provider_admin",
        scope="a provider admin for its provider's peers (an admin any); sent to the peer's phone",
    ),
    "GET /peer": public("the sign-in hint, or the app for a peer's session"),
    "GET /peer/sign-in": public("the page of a one-time sign-in link (a button, no change)"),
    "POST /peer/sign-in": public("uses a one-time sign-in link"),
    "POST /peer/sign-out": public("ends the session of its cookie"),
    "GET /peer/data": public("a peer's session cookie, checked by the page"),
    "GET /peer/events": public("a peer's session cookie, checked by the page"),
    "POST /peer/assignments/{assignment_id}/{action}": public(
        "a peer's session cookie, checked by the page: only that peer's assignments"
    ),
    "POST /peer/status": public("a peer's session cookie, checked by the page"),
    "GET /peer/after/{assignment_id}/consent-form": public(
        "a peer's session cookie, checked by the page: only the peer who met the person"
    ),
    "POST /peer/after/{assignment_id}/contact": public(
        "a peer's session cookie, checked by the page: only the peer who met the person"
    ),
    "GET /peer/directory": public("a peer's session cookie, checked by the page"),
    "POST /peer/contacts/{contact_id}/referrals": public(
        "a peer's session cookie, checked by the page: its provider's contacts only"
    ),
    "POST /peer/referrals/{referral_id}/arrival": public(
        "a peer's session cookie, checked by the page: its provider's referrals only"
    ),
    "POST /peer/followups/{followup_id}/outcome": public(
        "a peer's session cookie, checked by the page: its provider's follow-ups only"
    ),
    "POST /peer/people/{person_id}/consent/revoke": public(
        "a peer's session cookie, checked by the page: its provider's people only"
    ),
    # The provider's follow-up queue: a provider admin's session cookie.
    "GET /provider": public("a sign-in form, or the queue for a provider admin's session"),
    "POST /provider/login": public("checks the key it is given (a provider-scoped provider_admin)"),
    "POST /provider/logout": public("ends the session of its cookie"),
    "GET /provider/data": public("a provider admin's session cookie; its provider's follow-ups"),
    "GET /provider/events": public("a provider admin's session cookie, checked by the page"),
    "POST /provider/followups/{followup_id}/outcome": public(
        "a provider admin's session cookie; its provider's follow-ups, as the API's"
    ),
    "POST /provider/followups/{followup_id}/assign": public(
        "a provider admin's session cookie; its provider's follow-ups and peers, as the API's"
    ),
    "GET /provider/static/{name}": public("the page's script, style and icon"),
    "GET /provider/sw.js": public("the page's service worker (shows a pushed notice)"),
    "POST /provider/push-subscriptions": public(
        "a provider admin's session cookie, checked by the page"
    ),
    "POST /provider/contact": public("a provider admin's session cookie, checked by the page"),
    "POST /v1/notify/sms-status": public("signed by the SMS provider with the account token"),
    "GET /v1/notify/me": key("supervisor", "provider_admin", scope="the key's own contact"),
    "PUT /v1/notify/me": key("supervisor", "provider_admin", scope="the key's own contact"),
    "GET /peer/push-key": public("the public VAPID key browsers subscribe with"),
    "POST /peer/push-subscriptions": public("a peer's session cookie, checked by the page"),
    "GET /peer/manifest.webmanifest": public("the app's manifest"),
    "GET /peer/sw.js": public("the app's service worker"),
    "GET /peer/static/{name}": public("the app's script, style and icon"),
    # Audit and keys.
    "GET /v1/audit": key("auditor"),
    "GET /v1/keys": key(),
    "POST /v1/keys": key(),
    "POST /v1/keys/{key_id}/revoke": key(),
    "POST /v1/keys/{key_id}/rotate": key(),
}
