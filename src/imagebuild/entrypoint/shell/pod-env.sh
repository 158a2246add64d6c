# shellcheck shell=bash source-path=SCRIPTDIR
# The pod's environment, sourced (never run) by every bash shell — login, SSH
# commands, tmux windows, su — and by the entrypoint for the pod's services.
# Order: the pod's variables (/etc/rp_environment, written at each start), the
# locations that keep caches on the volume, then /workspace/.env (wins).

[ -n "${BASH_VERSION:-}" ] || return 0

# A shell that inherited the pod environment keeps it (and an activated venv's PATH).
if [ -z "${IMAGEBUILD_POD_ENV:-}" ]; then
    _pod_env_fresh=1
    # shellcheck source=/dev/null
    if [ -r /etc/rp_environment ]; then . /etc/rp_environment; fi
    # ManiSkill downloads a missing asset instead of asking (input() fails in jobs);
    # torch.compile's kernels outlive a restart (minutes to compile again).
    export UV_CACHE_DIR=/workspace/.cache/uv \
        PIP_CACHE_DIR=/workspace/.cache/pip \
        HF_HOME=/workspace/.cache/huggingface \
        TORCH_HOME=/workspace/.cache/torch \
        npm_config_cache=/workspace/.cache/npm \
        WANDB_DIR=/workspace \
        WANDB_CACHE_DIR=/workspace/.cache/wandb \
        MS_ASSET_DIR=/workspace/datasets/maniskill \
        MS_SKIP_ASSET_DOWNLOAD_PROMPT=1 \
        TRITON_CACHE_DIR=/workspace/.cache/triton \
        TORCHINDUCTOR_CACHE_DIR=/workspace/.cache/torchinductor \
        HDF5_USE_FILE_LOCKING=FALSE
    # W&B runs name the pod's image and host (contract WANDB_NOTES_FILE, written by
    # pod-canary at each start); WANDB_NOTES the pod sets wins. `read`: no fork per shell.
    if [ -z "${WANDB_NOTES:-}" ]; then
        _pod_notes=
        while IFS='=' read -r _pod_key _pod_value; do
            if [ "$_pod_key" = POD_WANDB_NOTES_FILE ]; then _pod_notes=$_pod_value; break; fi
        done </usr/local/lib/imagebuild/entrypoint/contract.env 2>/dev/null
        if [ -n "$_pod_notes" ] && [ -r "$_pod_notes" ] && IFS= read -r WANDB_NOTES <"$_pod_notes"; then
            export WANDB_NOTES
        fi
        unset _pod_notes _pod_key _pod_value
    fi
    # Project venvs and the uv cache share the volume: hardlinks store each
    # wheel once (uv copies instead, with a warning, into /opt/venv on the container disk).
    export UV_LINK_MODE=hardlink
    # Pythons uv installs at run time go on the volume: a project .venv links to its
    # interpreter, which would vanish with the container disk on the next restart.
    export UV_PYTHON_INSTALL_DIR=/workspace/.local/share/uv/python
    if [ -r /usr/local/lib/imagebuild/entrypoint/lib/dotenv.sh ]; then
        # shellcheck source=../lib/dotenv.sh
        . /usr/local/lib/imagebuild/entrypoint/lib/dotenv.sh
        pod_dotenv_load /workspace/.env 2>/dev/null
    fi
    export IMAGEBUILD_POD_ENV=1
fi

# Files root and dev create stay writable by both (shared dirs are setgid dev).
umask 0002

# PATH: a fresh session (sshd, su -) starts from the image's PATH; shells
# that reset it (login shells in tmux) get the image's directories back at the
# end. Each directory appears once; an activated venv stays first.
_pod_path_add() { case ":$PATH:" in *":$1:"*) ;; *) PATH=${PATH:+$PATH:}$1 ;; esac; }
_pod_path_merge() {
    local dir rest=$1
    while [ -n "$rest" ]; do
        dir=${rest%%:*}
        [ -n "$dir" ] && _pod_path_add "$dir"
        case $rest in *:*) rest=${rest#*:} ;; *) rest= ;; esac
    done
}
if [ -n "${_pod_env_fresh:-}" ] && [ -n "${IMAGEBUILD_IMAGE_PATH:-}" ]; then
    _pod_path_old=$PATH
    PATH=$IMAGEBUILD_IMAGE_PATH
    _pod_path_merge "$_pod_path_old"
else
    _pod_path_merge "${IMAGEBUILD_IMAGE_PATH:-}"
fi
case ":$PATH:" in *:/workspace/.local/bin:*) ;; *) PATH=/workspace/.local/bin:$PATH ;; esac
export PATH
unset -f _pod_path_add _pod_path_merge
unset _pod_path_old _pod_env_fresh
