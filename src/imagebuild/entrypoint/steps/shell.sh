# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Step "bashrc-pod": /workspace/.bashrc_pod, the user's file every interactive
# shell sources. Created once from the image's template, then never touched.

step_bashrc_pod() {
    local file=$POD_BASHRC
    if [ -e "$file" ] || [ -L "$file" ]; then return 0; fi
    if [ -z "$WS_WRITABLE" ]; then return 0; fi
    install -m 0664 -o dev -g dev "$POD_LIB/shell/bashrc_pod" "$file" && info "shell: created $file"
}
