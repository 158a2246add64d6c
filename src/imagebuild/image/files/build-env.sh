# Sourced at the start of every downloading RUN step. It exposes the build secrets
# BuildKit mounted for that step under its tmpfs /tmp (never in a layer) to apt, pip,
# uv, npm and curl, records resolved versions for the image labels, and normalises
# the layer at the end of the step. imagebuild puts the contract's names the build
# steps use (build.env: POD_VERSIONS_DIR; contract.BUILD_NAMES) above these lines.

if [ -s /tmp/secrets/ca_bundle ]; then
    # A CA bundle for TLS-intercepting proxies: every client reads one of these.
    export SSL_CERT_FILE=/tmp/secrets/ca_bundle \
        REQUESTS_CA_BUNDLE=/tmp/secrets/ca_bundle \
        CURL_CA_BUNDLE=/tmp/secrets/ca_bundle \
        PIP_CERT=/tmp/secrets/ca_bundle \
        NODE_EXTRA_CA_CERTS=/tmp/secrets/ca_bundle \
        npm_config_cafile=/tmp/secrets/ca_bundle
    APT_TLS="-o Acquire::https::CAInfo=/tmp/secrets/ca_bundle"
else
    APT_TLS=""
fi

# Other secrets (private index URLs, tokens) become variables of the same name.
for _secret in /tmp/secrets/*; do
    [ -f "$_secret" ] || continue
    _name=$(basename "$_secret")
    case "$_name" in
        ca_bundle) ;;
        *[!A-Za-z0-9_]*) ;;
        *) export "$_name=$(cat "$_secret")" ;;
    esac
done
unset _secret _name

# apt without recommends, quietly, trusting the CA bundle when one was given.
apt_install() {
    # shellcheck disable=SC2086
    apt-get $APT_TLS update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get $APT_TLS install -y -qq --no-install-recommends "$@"
}

# record_version LAYER KEY VALUE: what a layer resolved, read back into labels.
record_version() {
    mkdir -p "$POD_VERSIONS_DIR"
    printf '%s=%s\n' "$2" "$3" >> "$POD_VERSIONS_DIR/$1"
}

# Reproducible layers: the step's start, on the tmpfs /tmp (never in a layer).
# normalise_layer, at the end of every RUN, empties run-time noise and sets every
# file the step wrote to SOURCE_DATE_EPOCH, so the same lock gives the same bits.
# (A chunk step stamps its own files instead: files/compile-chunk.py, given this
# marker; walking all of / costs ~0.35 s a step and a layer has dozens of chunks.)
# Noise is emptied, not removed: removing a file of a lower layer leaves a
# whiteout stamped with the time of removal, which no command can reset.
export IMAGEBUILD_STEP_MARKER=/tmp/.imagebuild-step
[ -e "$IMAGEBUILD_STEP_MARKER" ] || : >"$IMAGEBUILD_STEP_MARKER"
normalise_layer() {
    for _noise in /var/log/apt/eipp.log.xz /var/log/apt/history.log /var/log/apt/term.log \
        /var/log/dpkg.log /var/log/alternatives.log /var/cache/ldconfig/aux-cache \
        /etc/machine-id /var/lib/dbus/machine-id /root/.wget-hsts; do
        if [ -s "$_noise" ] && [ "$_noise" -nt "$IMAGEBUILD_STEP_MARKER" ]; then : >"$_noise"; fi
    done
    # git-lfs's postinst writes its filter keys in Go's random map order: fix the order.
    if [ /etc/gitconfig -nt "$IMAGEBUILD_STEP_MARKER" ] &&
        git config --system --get filter.lfs.process >/dev/null 2>&1; then
        git config --system --remove-section filter.lfs
        git config --system filter.lfs.clean "git-lfs clean -- %f"
        git config --system filter.lfs.smudge "git-lfs smudge -- %f"
        git config --system filter.lfs.process "git-lfs filter-process"
        git config --system filter.lfs.required true
    fi
    find / -xdev -newer "$IMAGEBUILD_STEP_MARKER" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
}
