#!/bin/sh
# Runs on the board after `vitfleet deploy` has synced <install_dir>. Idempotent.
#   board-install.sh install   apt provisioning (Pi/Debian/Jetson kinds), python env, TensorRT engines (Jetson), services (re)started
#   board-install.sh ensure    nothing changed: only start services that are not running
# Service manager: systemd when it is running (units in /etc/systemd/system, journal logs),
# else the process runner bin/vitfleet-services (logs in <install_dir>/logs). Override with
# `service_manager:` in fleet.yaml.
set -eu
HOME_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$HOME_DIR"
set -a
. "$HOME_DIR/config/board.env"
set +a
ACTION=${1:-install}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"

manager() {
    case "$VITFLEET_SERVICE_MANAGER" in
        systemd|process) echo "$VITFLEET_SERVICE_MANAGER" ;;
        *) if [ -d /run/systemd/system ]; then echo systemd; else echo process; fi ;;
    esac
}

provision() {
    # apt side (root): once, and again whenever the script or this board's services change.
    [ -n "$VITFLEET_PROVISION_SCRIPT" ] || return 0
    want="$(cat "$HOME_DIR/bin/$VITFLEET_PROVISION_SCRIPT" "$HOME_DIR/bin/provision-common.sh" | sha256sum |
        cut -d' ' -f1) $VITFLEET_SERVICES"
    have=$(cat "$HOME_DIR/data/provisioned" 2>/dev/null || true)
    [ "$want" != "$have" ] || return 0
    $SUDO sh "$HOME_DIR/bin/$VITFLEET_PROVISION_SCRIPT" "$(id -un)" "$VITFLEET_SERVICES"
    mkdir -p "$HOME_DIR/data"
    echo "$want" >"$HOME_DIR/data/provisioned"
}

python_env() {
    if [ "$VITFLEET_MAKE_VENV" != 1 ]; then
        "$VITFLEET_PYTHON" -c "import sys; sys.exit(sys.version_info < (3, 10))" \
            || { echo "error: $VITFLEET_PYTHON is older than Python 3.10" >&2; exit 1; }
        return 0
    fi
    if [ ! -x "$HOME_DIR/venv/bin/python" ]; then
        # --system-site-packages: TensorRT (JetPack) and Picamera2 (Pi OS) come from apt, not pip.
        python3 -m venv --system-site-packages "$HOME_DIR/venv"
        echo "created venv $HOME_DIR/venv"
    fi
    want=$(sha256sum "$HOME_DIR/app/requirements.txt" | cut -d' ' -f1)
    have=$(cat "$HOME_DIR/venv/.vitfleet-requirements.sha256" 2>/dev/null || true)
    if [ -d "$HOME_DIR/app/wheels" ]; then
        # An offline board (fleet.yaml `offline: true`): deploy shipped the wheels; the index is never asked.
        want="$want $(ls "$HOME_DIR/app/wheels" | sha256sum | cut -d' ' -f1)"
    fi
    if [ "$want" != "$have" ]; then
        if [ -d "$HOME_DIR/app/wheels" ]; then
            "$HOME_DIR/venv/bin/python" -m pip install --quiet --no-index --find-links "$HOME_DIR/app/wheels" \
                -r "$HOME_DIR/app/requirements.txt"
        else
            "$HOME_DIR/venv/bin/python" -m pip install --quiet --upgrade pip
            "$HOME_DIR/venv/bin/python" -m pip install --quiet -r "$HOME_DIR/app/requirements.txt"
        fi
        echo "$want" >"$HOME_DIR/venv/.vitfleet-requirements.sha256"
        echo "installed board requirements"
    fi
}

tensorrt_engines() {
    [ -n "$VITFLEET_TENSORRT_PRECISION" ] || return 0
    # Cached by key (ONNX sha, TensorRT version, GPU): a redeploy with the same ONNX rebuilds nothing.
    "$VITFLEET_PYTHON" -m vitfleet.cli engines build --backend tensorrt --engines "$HOME_DIR/engines" \
        --precision "$VITFLEET_TENSORRT_PRECISION"
}

systemd_units() {
    wanted=""
    for unit in "$HOME_DIR"/units/*.service; do
        [ -e "$unit" ] || continue
        $SUDO install -m 644 "$unit" /etc/systemd/system/
        wanted="$wanted $(basename "$unit")"
    done
    for old in /etc/systemd/system/vitfleet-*.service; do
        [ -e "$old" ] || continue
        case " $wanted " in *" $(basename "$old") "*) ;; *)
            $SUDO systemctl disable --now "$(basename "$old")" || true
            $SUDO rm -f "$old"; echo "removed $(basename "$old")" ;;
        esac
    done
    $SUDO systemctl daemon-reload
    if [ -n "$wanted" ]; then
        # shellcheck disable=SC2086
        $SUDO systemctl enable $wanted
        # shellcheck disable=SC2086
        if [ "$1" = ensure ]; then $SUDO systemctl start $wanted; else $SUDO systemctl restart $wanted; fi
        echo "systemd: $1 $wanted"
    fi
}

case "$ACTION" in
    install)
        provision
        python_env
        tensorrt_engines
        if [ "$(manager)" = systemd ]; then systemd_units restart; else "$HOME_DIR/bin/vitfleet-services" restart; fi ;;
    ensure)
        if [ "$(manager)" = systemd ]; then systemd_units ensure; else "$HOME_DIR/bin/vitfleet-services" ensure; fi ;;
    *) echo "usage: $0 install|ensure" >&2; exit 2 ;;
esac
