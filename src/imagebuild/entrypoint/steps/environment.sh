# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Step "environment": the pod's variables for SSH sessions (RunPod's
# /etc/rp_environment convention), /workspace/.env checked, then all of it
# loaded into the entrypoint for the services it starts.

# Per-process or per-login variables that must not leak into other sessions.
POD_ENV_SKIP=" HOME HOSTNAME PWD OLDPWD SHLVL TERM _ USER LOGNAME SHELL MAIL PATH IMAGEBUILD_POD_ENV "

# Called once, first thing, before the entrypoint exports anything itself.
write_rp_environment() {
    local name value tmp=/etc/rp_environment.tmp
    {
        echo "# The pod's variables, rewritten by pod-entrypoint at every start; sourced by every shell."
        for name in $(compgen -e); do
            case $POD_ENV_SKIP in *" $name "*) continue ;; esac
            value=${!name}
            printf "export %s='%s'\n" "$name" "${value//\'/\'\\\'\'}"
        done
        value=$PATH
        printf "export IMAGEBUILD_IMAGE_PATH='%s'\n" "${value//\'/\'\\\'\'}"
    } >"$tmp" || return 1
    # Pod variables may hold tokens: readable by root and dev only.
    chgrp dev "$tmp" 2>/dev/null
    chmod 0640 "$tmp" && mv -f "$tmp" /etc/rp_environment
}

step_environment() {
    local dotenv=$WS/.env
    write_rp_environment || warn "could not write /etc/rp_environment: SSH sessions miss the pod's variables"
    if [ -f "$dotenv" ] && [ -n "$WS_WRITABLE" ] && ! [ -L "$dotenv" ]; then
        # dev's shells read .env too: group dev, never world-readable.
        if [ "$(stat -c '%G %a' "$dotenv")" != "dev 660" ]; then
            chgrp dev "$dotenv" && chmod 0660 "$dotenv" && info "environment: $dotenv made readable by root and dev only (0660, group dev)"
        fi
    fi
    # Loading warns (line numbers only) into the log here; shells load it quietly.
    # shellcheck disable=SC2317 # called by pod_dotenv_load
    pod_dotenv_warn() { warn "$1"; }
    . "$POD_LIB/shell/pod-env.sh"
    unset -f pod_dotenv_warn
    if [ -f "$dotenv" ] && [ -r "$dotenv" ]; then
        info "environment: $dotenv loaded"
    elif ! [ -e "$dotenv" ]; then
        info "environment: no $dotenv (optional: tokens for HF, GitHub, W&B)"
    fi
}
