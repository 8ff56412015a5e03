#!/bin/sh
# Provision a Jetson (JetPack 6 / Ubuntu 22.04; JetPack 5 / Ubuntu 20.04 is refused, see below).
# Run as root; `make deploy` runs it (with sudo) on the first deploy and whenever this script changes.
#   provision-jetson.sh USER SERVICES
# TensorRT and its Python bindings come from JetPack (apt: python3-libnvinfer); the venv is made
# with --system-site-packages so it sees them. The venv gets the `board` + `jetson` dependency
# groups only: never torch. Not verified on hardware from this repository's CI.
set -eu
USER_NAME=${1:?usage: provision-jetson.sh USER SERVICES}
SERVICES=${2:-}
. "$(dirname "$0")/provision-common.sh"
if [ ! -f /etc/nv_tegra_release ]; then
    echo "error: /etc/nv_tegra_release not found; this is not a JetPack system (use provision-debian.sh)" >&2
    exit 1
fi
PACKAGES="python3 python3-venv python3-pip python3-dev rsync ca-certificates libglib2.0-0 python3-libnvinfer"
case ",$SERVICES," in *,camera,*) PACKAGES="$PACKAGES gstreamer1.0-tools" ;; esac
# shellcheck disable=SC2086
apt_install $PACKAGES
# JetPack 5 ships Python 3.8 and TensorRT bindings built for it.
require_python "flash JetPack 6 (L4T R36), or build TensorRT's Python bindings for a newer Python"
python3 -c "import tensorrt; print('TensorRT', tensorrt.__version__)" || {
    echo "error: the tensorrt Python module is missing; install JetPack's TensorRT: apt-get install nvidia-jetpack" >&2
    exit 1
}
finish video render i2c gpio
echo "provisioned $(head -1 /etc/nv_tegra_release) for $USER_NAME ($SERVICES)"
