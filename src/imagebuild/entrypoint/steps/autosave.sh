# shellcheck shell=bash disable=SC2154 # POD_LOG_DIR: see bin/pod-entrypoint
# Continuous save: pod-autosave runs in the background whenever the image has it;
# it saves every POD_SAVE_EVERY (--save-every) or save.toml's [save] every, and
# idles when neither is set (see bin/pod-autosave). It gets the stop signal with
# the entrypoint's group, like the idle watcher.

step_autosave() {
    command -v pod-autosave >/dev/null || return 0
    case ${POD_SAVE_EVERY:-} in off | OFF) info "autosave: off (POD_SAVE_EVERY=off)"; return 0 ;; esac
    pod-autosave </dev/null >>"$POD_LOG_DIR/autosave.log" 2>&1 &
    info "autosave: started, pid $! (log: $POD_LOG_DIR/autosave.log)"
}
