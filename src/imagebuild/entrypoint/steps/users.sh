# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Steps "users" and "claude": the dev user (Claude Code refuses
# --dangerously-skip-permissions as root) and Claude Code's login kept on the
# volume for root and dev alike.

step_users() {
    local uid
    if uid=$(id -u dev 2>/dev/null); then
        [ "$uid" = "$POD_DEV_UID" ] || warn "users: dev has uid $uid, not $POD_DEV_UID: files on the volume may show another owner"
        return 0
    fi
    useradd --create-home --uid "$POD_DEV_UID" --shell /bin/bash dev && info "users: created dev (uid $POD_DEV_UID)"
}

# Claude Code's ~/.claude.json lives in the shared, dev-writable .claude folder:
# its atomic writes put a temporary file beside the link's target.
POD_CLAUDE_JSON=.claude/.claude.json

# link_home_entry HOME NAME TARGET: HOME/NAME -> /workspace/TARGET. Whatever was
# written on the container disk instead (a real folder, or a file that replaced
# the link) moves to the volume first when the volume has no newer copy.
link_home_entry() {
    local target=$WS/$3 path=$1/$2
    if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then return 0; fi
    if [ -d "$path" ] && ! [ -L "$path" ]; then
        cp -a -n "$path/." "$target/" 2>/dev/null
        rm -rf "$path"
    elif [ -f "$path" ] && ! [ -L "$path" ]; then
        if ! [ -e "$target" ] || [ "$path" -nt "$target" ]; then
            mv -f "$path" "$target" && info "claude: kept the newer $path on the volume"
        else
            rm -f "$path"
        fi
    fi
    ln -sfn "$target" "$path"
}

step_claude() {
    if [ -z "$WS_WRITABLE" ]; then
        warn "claude: $WS not writable, Claude Code's login will not persist"
        return 0
    fi
    local home
    if [ -f "$WS/.claude.json" ] && ! [ -e "$WS/$POD_CLAUDE_JSON" ]; then
        mv "$WS/.claude.json" "$WS/$POD_CLAUDE_JSON" && info "claude: moved $WS/.claude.json to $WS/$POD_CLAUDE_JSON"
    fi
    for home in /root /home/dev; do
        [ -d "$home" ] || continue
        link_home_entry "$home" .claude .claude
        link_home_entry "$home" .claude.json "$POD_CLAUDE_JSON"
        chown -h "$(stat -c %u:%g "$home")" "$home/.claude" "$home/.claude.json"
    done
    # Files a root session wrote (0600 root) must stay readable for dev.
    find "$WS/.claude" \( ! -user dev -o ! -group dev \) -exec chown -h dev:dev {} + 2>/dev/null
    return 0
}
