"""The call's workflow, station by station (``flow``), the background work that runs it
(``jobs``) and a call's views across the stations (``views``): the one place that knows the
order of the stations."""
