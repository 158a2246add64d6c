# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Step "workspace": the /workspace layout, created on first boot, never overwritten.

# Folders both users work in: owned by dev, setgid so files root creates there
# stay in the dev group (with the pods' umask 0002, writable by both).
POD_SHARED_DIRS=(code datasets results models wandb .claude
    .cache .cache/uv .cache/pip .cache/huggingface .cache/npm .cache/torch .cache/wandb .cache/sapien .cache/triton .cache/torchinductor
    .local .local/bin .local/share .local/share/uv .local/share/uv/python)
# The pod's own state: root's.
POD_PRIVATE_DIRS=(.pod .pod/logs .pod/hooks .pod/hooks/start.d .pod/hooks/stop.d .pod/ssh)

step_workspace() {
    if ! mountpoint -q "$WS" 2>/dev/null; then
        warn "$WS is not a mounted volume: what is written there is lost with the container (mount a volume at $WS)"
    fi
    if [ -z "$WS_WRITABLE" ]; then
        warn "$WS is read-only or not writable: layout not created; logs go to $POD_LOG_DIR, SSH host keys will not persist"
        return 0
    fi
    local dir missing=() created=() odd=()
    for dir in "${POD_SHARED_DIRS[@]}" "${POD_PRIVATE_DIRS[@]}"; do
        if [ -d "$WS/$dir" ]; then continue; fi
        if [ -e "$WS/$dir" ] || [ -L "$WS/$dir" ]; then odd+=("$dir"); else missing+=("$dir"); fi
    done
    # One mkdir for all (parents come first in the lists); never -p, never over a file.
    if [ ${#missing[@]} -gt 0 ]; then (cd "$WS" && mkdir "${missing[@]}"); fi
    for dir in "${missing[@]}"; do
        if [ -d "$WS/$dir" ]; then created+=("$dir"); fi
    done
    local shared=() private=()
    for dir in "${created[@]}"; do
        case " ${POD_SHARED_DIRS[*]} " in
            *" $dir "*) shared+=("$WS/$dir") ;;
            *) private+=("$WS/$dir") ;;
        esac
    done
    if [ ${#shared[@]} -gt 0 ]; then chown dev:dev "${shared[@]}" && chmod 2775 "${shared[@]}"; fi
    if [ ${#private[@]} -gt 0 ]; then chmod 0755 "${private[@]}"; fi
    case " ${created[*]} " in *" .pod/ssh "*) chmod 0700 "$WS/.pod/ssh" ;; esac
    if [ ${#created[@]} -gt 0 ]; then info "workspace: created ${created[*]}"; fi
    if [ ${#odd[@]} -gt 0 ]; then warn "workspace: ${odd[*]} exist(s) but not as folders; left as they are"; fi
    return 0
}
