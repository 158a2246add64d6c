# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Step "jupyter": JupyterLab on 8888 rooted at /workspace (RunPod's convention)
# when JUPYTER_PASSWORD is set and the image has Jupyter.

step_jupyter() {
    [ -n "${JUPYTER_PASSWORD:-}" ] || return 0
    if ! command -v jupyter-lab >/dev/null; then
        info "jupyter: JUPYTER_PASSWORD is set but this image has no JupyterLab; not started"
        return 0
    fi
    local root=$WS
    [ -d "$root" ] || root=/
    # The password reaches Jupyter through its environment, not its command line (ps).
    (cd "$root" && JUPYTER_TOKEN=$JUPYTER_PASSWORD exec jupyter-lab --allow-root --no-browser \
        --ip=0.0.0.0 --port=8888 --ServerApp.root_dir="$root" >>"$POD_LOG_DIR/jupyter.log" 2>&1) &
    info "jupyter: JupyterLab starting on port 8888 (log: $POD_LOG_DIR/jupyter.log)"
}
