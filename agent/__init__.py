"""Fleet runtime: board agent, aggregator, camera node, wire protocol and MQTT plumbing.

Board-side code: imports nothing from torch.
"""
