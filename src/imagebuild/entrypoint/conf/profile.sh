# imagebuild: the pod environment for login shells (SSH logins, tmux windows, su -).
if [ -r /usr/local/lib/imagebuild/entrypoint/shell/pod-env.sh ]; then
    # shellcheck source=../shell/pod-env.sh
    . /usr/local/lib/imagebuild/entrypoint/shell/pod-env.sh
fi
