"""Shared pytest fixtures. Each component keeps its fixtures in its own module and re-exports them here."""

# --- fleet runtime (agent/): a real mosquitto per test --------------------------------------------------------
# --- end fleet runtime --------------------------------------------------------------------------------------
# --- model side (decompose/): a tiny real teacher --------------------------------------------------------------
from decompose_fixtures import fmnist_slices, one_torch_thread, tiny_teacher  # noqa: F401,E402
from mqtt_fixtures import broker  # noqa: F401
# --- end model side ----------------------------------------------------------------------------------------
