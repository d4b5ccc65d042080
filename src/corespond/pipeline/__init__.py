"""The call's workflow, station by station (``flow``), and the background work that runs it
(``jobs``): the one place that knows the order of the stations."""
