"""Shared pytest fixtures. Each component keeps its fixtures in its own module and re-exports them here."""

# --- fleet runtime (agent/): a real mosquitto per test --------------------------------------------------------
from mqtt_fixtures import broker  # noqa: F401
# --- end fleet runtime --------------------------------------------------------------------------------------
