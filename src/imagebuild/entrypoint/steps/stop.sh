# shellcheck shell=bash disable=SC2154 # now_us, elapsed_ms, WS...: see lib/log.sh, bin/pod-entrypoint
# On SIGTERM (docker stop, RunPod stop): stop hooks, then pod-save (the
# automatic save, when the image has it), all within POD_STOP_BUDGET seconds.

POD_STOP_BUDGET_DEFAULT=8

step_stop() {
    local budget=${POD_STOP_BUDGET:-$POD_STOP_BUDGET_DEFAULT} started deadline left_ms status home
    if ! [[ $budget =~ ^[0-9]{1,4}$ ]]; then
        warn "stop: POD_STOP_BUDGET must be whole seconds; using $POD_STOP_BUDGET_DEFAULT"
        budget=$POD_STOP_BUDGET_DEFAULT
    fi
    now
    started=$now_us
    deadline=$((now_us + budget * 1000000))
    info "stop: stop hooks and save, budget ${budget} s"
    run_hooks stop "$deadline"
    if command -v pod-save >/dev/null; then
        now
        left_ms=$(((deadline - now_us) / 1000))
        if [ "$left_ms" -ge 1000 ]; then
            # pod-save keeps to --budget itself; timeout is the backstop.
            timeout --kill-after=1 "$((left_ms / 1000)).$(printf '%03d' $((left_ms % 1000)))" \
                pod-save --budget "$((left_ms / 1000))" </dev/null >>"$POD_LOG_DIR/save.log" 2>&1
            status=$?
            case $status in
                0) info "stop: pod-save ok (see $POD_LOG_DIR/save.log)" ;;
                124 | 137) warn "stop: pod-save did not finish within the stop budget (see $POD_LOG_DIR/save.log)" ;;
                *) warn "stop: pod-save reported status $status: not everything is saved (see $POD_LOG_DIR/save.log)" ;;
            esac
        else
            warn "stop: pod-save not run, less than 1 s of the stop budget left"
        fi
    fi
    # Claude Code may have replaced a link with a file on the container disk.
    if [ -n "$WS_WRITABLE" ]; then
        for home in /root /home/dev; do
            [ -d "$home" ] && link_home_entry "$home" .claude.json "$POD_CLAUDE_JSON"
        done
    fi
    since_ms "$started"
    info "stop: done in $elapsed_ms ms"
}
