# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Step "git": identity and GitHub credentials from .env for root and dev, and
# safe.directory for the repositories both users share under /workspace/code.
# Written to /etc/imagebuild/gitconfig, which /etc/gitconfig includes.

POD_GITCONFIG=/etc/imagebuild/gitconfig

# git_value TEXT: TEXT as a quoted git-config value.
git_value() {
    local text=${1//$'\n'/ }
    text=${text//\\/\\\\}
    printf '"%s"' "${text//\"/\\\"}"
}

step_git() {
    local name=${GIT_USER_NAME:-${GIT_AUTHOR_NAME:-${GIT_NAME:-}}}
    local email=${GIT_USER_EMAIL:-${GIT_AUTHOR_EMAIL:-${GIT_EMAIL:-}}}
    local repo repos=0 tmp=$POD_GITCONFIG.tmp
    mkdir -p "${POD_GITCONFIG%/*}" || return 1
    {
        echo "# Rewritten by pod-entrypoint at every start (identity from /workspace/.env)."
        echo "[safe]"
        printf '\tdirectory = %s\n' "$(git_value "$WS/code")" "$(git_value "$WS/code/*")"
        # git before 2.46 matches exact paths only: list the repositories there now.
        if [ -d "$WS/code" ]; then
            while IFS= read -r repo; do
                printf '\tdirectory = %s\n' "$(git_value "$repo")"
                repos=$((repos + 1))
            done < <(find "$WS/code" -maxdepth 4 -name .git -prune -printf '%h\n' 2>/dev/null)
        fi
        # The token stays in the environment: git asks git-credential-pod for it.
        printf '[credential "https://github.com"]\n\thelper = pod\n'
        if [ -n "$name" ] || [ -n "$email" ]; then
            echo "[user]"
            if [ -n "$name" ]; then printf '\tname = %s\n' "$(git_value "$name")"; fi
            if [ -n "$email" ]; then printf '\temail = %s\n' "$(git_value "$email")"; fi
        fi
    } >"$tmp" && mv -f "$tmp" "$POD_GITCONFIG" || return 1
    local identity="no identity (set GIT_USER_NAME and GIT_USER_EMAIL in .env)"
    if [ -n "$name" ] && [ -n "$email" ]; then identity="identity from .env"; fi
    local token="no GitHub token"
    if [ -n "${GITHUB_TOKEN:-${GH_TOKEN:-}}" ]; then token="GitHub token from the environment"; fi
    info "git: $identity, $token, $repos repositories marked safe"
}
