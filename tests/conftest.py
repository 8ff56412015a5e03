"""Shared pytest fixtures. Each component keeps its fixtures in its own module and re-exports them here."""

# --- fleet runtime (agent/): a real mosquitto per test --------------------------------------------------------
from mqtt_fixtures import broker  # noqa: F401
# --- end fleet runtime --------------------------------------------------------------------------------------

# --- model side (decompose/): a tiny real teacher --------------------------------------------------------------
from decompose_fixtures import fmnist_slices, one_torch_thread, tiny_teacher  # noqa: F401,E402
# --- end model side ----------------------------------------------------------------------------------------
