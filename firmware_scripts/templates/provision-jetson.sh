#!/bin/sh
# Provision a Jetson (JetPack 6 / Ubuntu 22.04; JetPack 5 / Ubuntu 20.04 is refused, see below).
# Run as root; `make deploy` runs it (with sudo) on the first deploy and whenever this script changes.
#   provision-jetson.sh USER SERVICES
# TensorRT and its Python bindings come from JetPack (apt: nvidia-jetpack / python3-libnvinfer); the
# venv is made with --system-site-packages so it sees them. The venv gets the `board` + `jetson`
# dependency groups only: never torch. Not verified on hardware from this repository's CI.
set -eu
USER_NAME=${1:?usage: provision-jetson.sh USER SERVICES}
SERVICES=${2:-}
export DEBIAN_FRONTEND=noninteractive
if [ ! -f /etc/nv_tegra_release ]; then
    echo "error: /etc/nv_tegra_release not found; this is not a JetPack system (use provision-debian.sh)" >&2
    exit 1
fi
PACKAGES="python3 python3-venv python3-pip python3-dev rsync ca-certificates libglib2.0-0 python3-libnvinfer"
case ",$SERVICES," in *,broker,*) PACKAGES="$PACKAGES mosquitto" ;; esac
case ",$SERVICES," in *,camera,*) PACKAGES="$PACKAGES gstreamer1.0-tools dataset-fashion-mnist" ;; esac
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $PACKAGES
python3 -c "import sys; sys.exit(sys.version_info < (3, 10))" || {
    # JetPack 5 ships Python 3.8 and TensorRT bindings built for it; vitfleet's code needs >= 3.10.
    echo "error: $(python3 --version) on $(head -1 /etc/nv_tegra_release); vitfleet needs Python >= 3.10:" \
         "flash JetPack 6 (L4T R36), or build TensorRT's Python bindings for a newer Python" >&2
    exit 1
}
python3 -c "import tensorrt; print('TensorRT', tensorrt.__version__)" || {
    echo "error: the tensorrt Python module is missing; install JetPack's TensorRT: apt-get install nvidia-jetpack" >&2
    exit 1
}
case ",$SERVICES," in *,broker,*)
    if [ -d /run/systemd/system ]; then systemctl disable --now mosquitto.service 2>/dev/null || true; fi ;;
esac
for group in video render i2c gpio; do
    getent group "$group" >/dev/null && usermod -aG "$group" "$USER_NAME"
done
echo "provisioned $(head -1 /etc/nv_tegra_release) for $USER_NAME ($SERVICES)"
