# Shared by provision-debian.sh and provision-jetson.sh (sourced, not run): the apt install of the
# packages each script collected, and the steps after it that every board kind needs.

# apt_install PACKAGES...: with mosquitto on the broker board and the dataset on the camera board.
apt_install() {
    packages="$*"
    case ",$SERVICES," in *,broker,*) packages="$packages mosquitto" ;; esac
    case ",$SERVICES," in *,camera,*) packages="$packages dataset-fashion-mnist" ;; esac
    export DEBIAN_FRONTEND=noninteractive
    missing=""
    for package in $packages; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
    done
    # An image that already holds everything (a flashed OS, a board without internet) never asks the mirror.
    [ -n "$missing" ] || return 0
    packages=$missing
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $packages
}

# require_python HINT: vitfleet's code needs Python >= 3.10; HINT says how to get it on this OS.
require_python() {
    python3 -c "import sys; sys.exit(sys.version_info < (3, 10))" || {
        echo "error: $(python3 --version) is too old; vitfleet needs Python >= 3.10: $1" >&2
        exit 1
    }
}

# finish GROUPS...: hand port 1883 to vitfleet's own broker unit and give the user device access.
finish() {
    case ",$SERVICES," in *,broker,*)
        # vitfleet-broker.service runs mosquitto with the fleet's TLS/ACL config; the
        # distribution's default instance would hold the port.
        if [ -d /run/systemd/system ]; then systemctl disable --now mosquitto.service 2>/dev/null || true; fi ;;
    esac
    for group in "$@"; do
        getent group "$group" >/dev/null && usermod -aG "$group" "$USER_NAME"
    done
    true
}
