# shellcheck shell=bash
# Log lines of the entrypoint and its background jobs: to stdout (docker logs)
# and to the log file on the volume. Callers never pass secret values here.

POD_LOG_FILE=${POD_LOG_FILE:-}

# now_us: microseconds since the epoch into $now_us, without forking (bash 5).
now() { now_us=${EPOCHREALTIME//[!0-9]/}; }

log() { # log LEVEL MESSAGE...
    local stamp line
    printf -v stamp '%(%Y-%m-%dT%H:%M:%S)T' -1
    printf -v line '%s.%s %-5s %s' "$stamp" "${EPOCHREALTIME: -6:3}" "$1" "${*:2}"
    printf '%s\n' "$line"
    if [ -n "$POD_LOG_FILE" ]; then printf '%s\n' "$line" >>"$POD_LOG_FILE"; fi 2>/dev/null
}
info() { log info "$@"; }
warn() { log warn "$@"; }
error() { log error "$@"; }

# since_ms START_US: milliseconds elapsed since START_US into $elapsed_ms.
# shellcheck disable=SC2034 # elapsed_ms is read by the callers
since_ms() { now; elapsed_ms=$(((now_us - $1) / 1000)); }

# log_open DIR: log to DIR/entrypoint.log, keeping one older file past 1 MiB.
log_open() {
    local file=$1/entrypoint.log size
    size=$(stat -c %s "$file" 2>/dev/null || echo 0)
    if [ "$size" -gt 1048576 ]; then mv -f "$file" "$file.1"; fi
    POD_LOG_FILE=$file
}
