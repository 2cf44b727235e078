#!/usr/bin/env bash
# Launcher of the ferfast kiosk: waits for the X display, keeps the screen awake, then runs
# ferfast-stream fullscreen. Settings come from the environment (see ferfast-kiosk.env).
set -euo pipefail

SOURCE="${FERFAST_SOURCE:-0}"
MODEL="${FERFAST_MODEL:-int8}"
DETECTOR_SIZE="${FERFAST_DETECTOR_SIZE:-320}"
EVENTS_DIR="${FERFAST_EVENTS_DIR:-}"
STREAM="${FERFAST_STREAM:-ferfast-stream}"
export DISPLAY="${DISPLAY:-:0}"

if [[ "$SOURCE" == "csi" ]]; then
    # CSI camera (Argus) -> BGR frames for OpenCV's GStreamer backend (JetPack's OpenCV).
    SOURCE="nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 \
! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR \
! appsink drop=true max-buffers=1"
fi

# Wait for the X server (the service may start before the display is up).
for _ in $(seq 1 "${FERFAST_X_WAIT:-60}"); do
    if xset q >/dev/null 2>&1; then
        break
    fi
    sleep 1
done
if ! xset q >/dev/null 2>&1; then
    echo "ferfast-kiosk: X display $DISPLAY is not available" >&2
    exit 1
fi
# A kiosk screen never blanks.
xset s off -dpms s noblank || true

args=(--source "$SOURCE" --model "$MODEL" --detector-size "$DETECTOR_SIZE" --fullscreen)
if [[ -n "${FERFAST_YUNET:-}" ]]; then
    args+=(--detector yunet --detector-model "$FERFAST_YUNET")
fi
if [[ -n "$EVENTS_DIR" ]]; then
    mkdir -p "$EVENTS_DIR"
    # One file per start: a restart never truncates earlier events.
    args+=(--jsonl "$EVENTS_DIR/events-$(date -u +%Y%m%dT%H%M%SZ).jsonl")
fi
if [[ -n "${FERFAST_MQTT:-}" ]]; then
    # The kiosk's topic level (PREFIX/<name>/faces, .../status): the host name unless set, so
    # kiosks that all read camera 0 still publish apart. The password stays in the environment
    # (FERFAST_MQTT_PASSWORD, read by ferfast-stream itself), never on the command line.
    args+=(--mqtt "$FERFAST_MQTT" --mqtt-source-name "${FERFAST_MQTT_NAME:-$(hostname -s)}")
    if [[ -n "${FERFAST_MQTT_CA:-}" ]]; then
        args+=(--mqtt-ca "$FERFAST_MQTT_CA")
    fi
    if [[ -n "${FERFAST_MQTT_CERT:-}" ]]; then
        args+=(--mqtt-cert "$FERFAST_MQTT_CERT")
    fi
    if [[ -n "${FERFAST_MQTT_KEY:-}" ]]; then
        args+=(--mqtt-key "$FERFAST_MQTT_KEY")
    fi
fi
if [[ -n "${FERFAST_METRICS_PORT:-}" ]]; then
    args+=(--metrics-port "$FERFAST_METRICS_PORT")
    args+=(--metrics-host "${FERFAST_METRICS_HOST:-127.0.0.1}")
fi
# shellcheck disable=SC2206  # extra flags are split on purpose
extra=(${FERFAST_EXTRA_ARGS:-})

# exec: systemd's SIGINT reaches ferfast-stream directly (clean stop, complete JSON Lines).
exec "$STREAM" "${args[@]}" "${extra[@]}"
