# imagebuild: the pod environment for login shells (SSH logins, tmux windows, su -).
if [ -r /usr/local/lib/imagebuild/entrypoint/shell/pod-env.sh ]; then
    # shellcheck source=../shell/pod-env.sh
    . /usr/local/lib/imagebuild/entrypoint/shell/pod-env.sh
fi
# imagebuild: at an interactive login, when the last save ran and what is not saved yet.
case $- in *i*)
    if command -v pod-autosave >/dev/null 2>&1; then
        pod-autosave --status --quiet-if-none 2>/dev/null
    fi ;;
esac
