"""corespond: route nonviolent substance-use 911 calls to an on-duty peer recovery specialist."""

__version__ = "0.1.0"
