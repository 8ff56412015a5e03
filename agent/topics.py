"""Moved to the core: vitfleet/topics.py (topic names and the availability message). Kept only so that
`from vitfleet.agent.topics import Topics` in bench/contenders.py keeps working; import vitfleet.topics."""

from vitfleet.topics import OFFLINE, ONLINE, ROOT, Availability, Topics

__all__ = ["OFFLINE", "ONLINE", "ROOT", "Availability", "Topics"]
