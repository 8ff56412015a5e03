#!/bin/sh
# Provision a Raspberry Pi OS (Bookworm, aarch64) or Debian/Ubuntu board for vitfleet. Run as root;
# `make deploy` runs it (with sudo) on the first deploy and whenever this script changes.
#   provision-debian.sh USER SERVICES    e.g.  provision-debian.sh vitfleet broker,agent
# Installs the apt side only: Python + venv, rsync, OpenCV's runtime libraries, Picamera2 on a Pi,
# mosquitto on the broker board. Python packages go into <install_dir>/venv from the `board`
# dependency group (board-install.sh): never torch.
set -eu
USER_NAME=${1:?usage: provision-debian.sh USER SERVICES}
SERVICES=${2:-}
. "$(dirname "$0")/provision-common.sh"
PACKAGES="python3 python3-venv python3-pip rsync ca-certificates libglib2.0-0"
if grep -q "Raspberry Pi" /proc/device-tree/model 2>/dev/null; then
    # From apt, not pip: Picamera2 needs the Pi's libcamera build (the venv sees it via --system-site-packages).
    PACKAGES="$PACKAGES python3-picamera2"
fi
# shellcheck disable=SC2086
apt_install $PACKAGES
require_python "Raspberry Pi OS Bookworm has 3.11; upgrade the OS"
finish video gpio i2c spi
echo "provisioned $(. /etc/os-release && echo "$PRETTY_NAME") for $USER_NAME ($SERVICES)"
