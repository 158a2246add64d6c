# shellcheck shell=bash disable=SC2154 # POD_LOG_DIR: see bin/pod-entrypoint
# Idle stop: with POD_IDLE_STOP set (imagebuild run/pod create --idle-stop), the
# watcher runs in the background and stops the pod once it is idle that long
# (see bin/pod-idle-watch). It gets the stop signal with the entrypoint's group.

step_idle_watch() {
    case ${POD_IDLE_STOP:-off} in "" | off | OFF) return 0 ;; esac
    if ! command -v pod-idle-watch >/dev/null; then
        warn "idle-watch: POD_IDLE_STOP is set but this image has no pod-idle-watch"
        return 1
    fi
    POD_LOG_DIR=$POD_LOG_DIR pod-idle-watch </dev/null &
    info "idle-watch: started, pid $! (log: $POD_LOG_DIR/idle.log)"
}
