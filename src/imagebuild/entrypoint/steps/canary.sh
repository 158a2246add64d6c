# shellcheck shell=bash disable=SC2154 # POD_LOG_DIR...: set by bin/pod-entrypoint
# Step "canary" (after ready, in the background: SSH never waits for it): pod-canary
# --at-start checks the GPU; its lines go to the log, its result to /run/pod-canary.json
# and the status file's second line. POD_CANARY=off leaves it out.

step_canary() {
    case ${POD_CANARY:-} in
        off | 0 | false | no)
            printf '%s\n' "$(head -n1 "$POD_STATUS_FILE")" "$POD_CANARY_STATUS_PREFIX off" >"$POD_STATUS_FILE"
            info "canary: off (POD_CANARY=$POD_CANARY)"
            return 0 ;;
    esac
    (
        trap 'warn "canary: interrupted by the stop"; exit 143' TERM
        local line status
        now
        local started=$now_us
        pod-canary --at-start >"$POD_LOG_DIR/canary.log" 2>&1
        status=$?
        while IFS= read -r line; do info "canary: $line"; done <"$POD_LOG_DIR/canary.log"
        since_ms "$started"
        if [ "$status" -ne 0 ]; then
            warn "canary: a GPU check failed ($elapsed_ms ms): see $POD_CANARY_RESULT"
        fi
    ) &
}
