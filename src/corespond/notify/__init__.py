"""Telling a peer of an offer on their phone: Web Push, through a durable queue."""
