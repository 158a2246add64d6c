# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Steps "ssh-keys", "host-keys" and "sshd": who may log in, a host identity
# that survives restarts and recreations, and sshd itself.

POD_KEY_TYPES=" ssh-ed25519 ssh-rsa ssh-dss ecdsa-sha2-nistp256 ecdsa-sha2-nistp384 ecdsa-sha2-nistp521 sk-ssh-ed25519@openssh.com sk-ecdsa-sha2-nistp256@openssh.com "
POD_HOST_KEY_TYPES=(ed25519 ecdsa rsa)

# collect_keys SOURCE TEXT: append TEXT's public keys to pod_keys (unique by
# key material). A line may hold several keys; anything else is reported by
# line number only.
collect_keys() {
    local source=$1 number=0 line word words type key comment found
    while IFS= read -r line || [ -n "$line" ]; do
        number=$((number + 1))
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
        read -r -a words <<<"$line"
        type="" key="" comment="" found=0
        for word in "${words[@]}" ""; do
            if [ -z "$word" ] || [[ $POD_KEY_TYPES == *" $word "* ]]; then
                if [ -n "$key" ]; then
                    add_key "$type $key${comment:+ $comment}" "$key" && found=$((found + 1))
                fi
                type=$word key="" comment=""
            elif [ -n "$type" ] && [ -z "$key" ] && [[ $word =~ ^AAAA[A-Za-z0-9+/]+=*$ ]]; then
                key=$word
            elif [ -n "$key" ]; then
                comment=${comment:+$comment }$word
            else
                type=""
            fi
        done
        if [ "$found" -eq 0 ]; then warn "ssh: $source line $number is not an SSH public key; skipped"; fi
    done <<<"$2"
}

add_key() { # add_key LINE MATERIAL
    case $pod_key_material in *" $2 "*) return 0 ;; esac
    pod_key_material+=" $2 "
    pod_keys+=("$1")
}

install_keys() { # install_keys USER HOME
    local dir=$2/.ssh
    mkdir -p "$dir" && chmod 0700 "$dir" || return 1
    if [ ${#pod_keys[@]} -gt 0 ]; then printf '%s\n' "${pod_keys[@]}"; fi >"$dir/authorized_keys.tmp" || return 1
    chmod 0600 "$dir/authorized_keys.tmp" && mv -f "$dir/authorized_keys.tmp" "$dir/authorized_keys" &&
        chown -R "$1:$1" "$dir"
}

step_ssh_keys() {
    pod_keys=() pod_key_material=" "
    local name extra=$POD_SSH_STORE/authorized_keys
    for name in PUBLIC_KEY SSH_PUBLIC_KEY; do
        if [ -n "${!name:-}" ]; then collect_keys "$name" "${!name}"; fi
    done
    if [ -f "$extra" ]; then collect_keys "$extra" "$(cat "$extra" 2>/dev/null)"; fi
    install_keys root /root || return 1
    if [ -d /home/dev ]; then install_keys dev /home/dev || return 1; fi
    if [ ${#pod_keys[@]} -eq 0 ]; then
        warn "ssh: no public key (set PUBLIC_KEY, or add keys to $extra): SSH logins are refused"
    else
        info "ssh: ${#pod_keys[@]} authorized key(s) for root and dev"
    fi
}

# install_host_key STORE TYPE: sshd wants 0600 root-owned keys and volumes may
# not keep modes, so sshd reads copies on the container disk.
install_host_key() {
    local key=$1/ssh_host_$2_key
    install -m 0600 -o root -g root "$key" "/etc/ssh/ssh_host_$2_key" &&
        install -m 0644 -o root -g root "$key.pub" "/etc/ssh/ssh_host_$2_key.pub"
}

# new_host_key STORE TYPE
new_host_key() {
    local key=$1/ssh_host_$2_key
    rm -f "$key" "$key.pub"
    ssh-keygen -q -t "$2" -N "" -C "root@pod" -f "$key"
}

step_host_keys() {
    local type store=$POD_SSH_STORE made=()
    if [ -z "$WS_WRITABLE" ] || ! [ -d "$store" ]; then
        warn "ssh: cannot keep host keys in $store: this start uses new ones (the fingerprint changes)"
        store=/run/pod/ssh
        mkdir -p "$store" && chmod 0700 "$store"
    fi
    for type in "${POD_HOST_KEY_TYPES[@]}"; do
        if [ -s "$store/ssh_host_${type}_key" ] && [ -s "$store/ssh_host_${type}_key.pub" ]; then
            install_host_key "$store" "$type" || return 1
        elif [ "$type" = rsa ]; then
            # RSA takes up to seconds: made in the background on first boot,
            # offered from the next start (clients use ed25519 or ECDSA meanwhile).
            rm -f /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub
            (new_host_key "$store" rsa && info "ssh: generated the RSA host key in $store (offered from the next start)") &
        else
            new_host_key "$store" "$type" && install_host_key "$store" "$type" || return 1
            made+=("$type")
        fi
    done
    if [ ${#made[@]} -gt 0 ]; then info "ssh: generated host keys (${made[*]}) in $store"; fi
}

step_sshd() {
    local tries=0
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    if ! /usr/sbin/sshd -E "$POD_LOG_DIR/sshd.log"; then
        error "sshd did not start (see $POD_LOG_DIR/sshd.log); the pod is up without SSH"
        return 1
    fi
    # Ready means accepting connections, not merely forked.
    until (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 500 ]; then
            error "sshd does not accept connections on port 22 after 5 s (see $POD_LOG_DIR/sshd.log)"
            return 1
        fi
        sleep 0.01
    done
}
