"""The peer's phone app: sign-in by a one-time link, the offer, the call, live updates."""
