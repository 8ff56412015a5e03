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
export DEBIAN_FRONTEND=noninteractive
PACKAGES="python3 python3-venv python3-pip rsync ca-certificates libglib2.0-0"
if grep -q "Raspberry Pi" /proc/device-tree/model 2>/dev/null; then
    # From apt, not pip: Picamera2 needs the Pi's libcamera build (the venv sees it via --system-site-packages).
    PACKAGES="$PACKAGES python3-picamera2"
fi
case ",$SERVICES," in *,broker,*) PACKAGES="$PACKAGES mosquitto" ;; esac
case ",$SERVICES," in *,camera,*) PACKAGES="$PACKAGES dataset-fashion-mnist" ;; esac
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $PACKAGES
python3 -c "import sys; sys.exit(sys.version_info < (3, 10))" || {
    echo "error: $(python3 --version) is too old; vitfleet needs Python >= 3.10 (Pi OS Bookworm has 3.11)" >&2
    exit 1
}
case ",$SERVICES," in *,broker,*)
    # vitfleet runs its own broker unit (vitfleet-broker.service) with the fleet's TLS/ACL config;
    # the distribution's default instance would hold port 1883.
    if [ -d /run/systemd/system ]; then systemctl disable --now mosquitto.service 2>/dev/null || true; fi ;;
esac
for group in video gpio i2c spi; do
    getent group "$group" >/dev/null && usermod -aG "$group" "$USER_NAME"
done
echo "provisioned $(. /etc/os-release && echo "$PRETTY_NAME") for $USER_NAME ($SERVICES)"
