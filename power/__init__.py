"""Onboard power meters, a sampler that integrates energy, and fleet energy per frame.

Board-side code: nothing here imports torch, and platform libraries (jtop) load lazily.
"""
