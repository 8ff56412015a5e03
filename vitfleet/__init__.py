"""vitfleet: run a decomposed Vision Transformer on a fleet of edge boards."""

__version__ = "0.1.0"
