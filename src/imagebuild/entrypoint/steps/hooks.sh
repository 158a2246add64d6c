# shellcheck shell=bash disable=SC2154 # now_us, elapsed_ms, WS...: see lib/log.sh, bin/pod-entrypoint
# The user's hooks: executable files of /workspace/.pod/hooks/{start,stop}.d,
# run in name order as root from /workspace. A failing hook is logged, never
# fatal; its output goes to hooks.log, not to the entrypoint log.

# run_hooks KIND [DEADLINE_US]: stop hooks get what is left of the budget.
run_hooks() {
    local kind=$1 deadline=${2:-} dir=$POD_HOOKS_DIR/$1.d hook name started status left_ms ran=0
    [ -d "$dir" ] || return 0
    for hook in "$dir"/*; do
        name=$kind.d/${hook##*/}
        if ! [ -f "$hook" ]; then continue; fi
        if ! [ -x "$hook" ]; then
            warn "hooks: $name is not executable (chmod +x it to run it); skipped"
            continue
        fi
        now
        started=$now_us
        printf '=== %(%Y-%m-%dT%H:%M:%S)T %s\n' -1 "$name" >>"$POD_LOG_DIR/hooks.log"
        if [ -n "$deadline" ]; then
            left_ms=$(((deadline - now_us) / 1000))
            if [ "$left_ms" -le 0 ]; then
                warn "hooks: $name not run, the stop budget is spent"
                continue
            fi
            (cd "$WS" 2>/dev/null || cd /; exec timeout --kill-after=1 "$((left_ms / 1000)).$(printf '%03d' $((left_ms % 1000)))" "$hook")
        else
            (cd "$WS" 2>/dev/null || cd /; exec "$hook")
        fi </dev/null >>"$POD_LOG_DIR/hooks.log" 2>&1
        status=$?
        since_ms "$started"
        ran=$((ran + 1))
        case $status in
            0) info "hooks: $name ok ($elapsed_ms ms)" ;;
            124 | 137) warn "hooks: $name stopped at the end of the stop budget ($elapsed_ms ms)" ;;
            *) warn "hooks: $name failed with status $status ($elapsed_ms ms, output in $POD_LOG_DIR/hooks.log); continuing" ;;
        esac
    done
    info "hooks: $kind.d done ($ran run)"
}
