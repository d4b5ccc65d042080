"""The dispatcher's console: ``/dispatch``."""
