-- One fixed body for the bare endpoint (bench/bare.py).
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"event_id":"bare","event_type":"call.created","occurred_at":"2026-11-23T04:12:09Z","call":{"incident_number":"26-1","agency":"CHARLESTON PD","call_type":"OD","narrative":"SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN"}}'
