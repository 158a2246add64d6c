# shellcheck shell=bash
# pod_dotenv_load FILE: export FILE's KEY=VALUE lines without running it as code.
#
# Accepts blank lines, `# comments`, an optional `export ` prefix, and values
# unquoted, "double-" or 'single-quoted' (taken literally, no expansion), with
# an optional trailing `# comment`. Any other line is skipped; when the caller
# defines pod_dotenv_warn (the entrypoint does, shells do not) it is told the
# line number only: lines of this file hold tokens and are never printed.

pod_dotenv_load() {
    local file=$1 number=0 line key value
    local assignment='^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$'
    local double='^"([^"]*)"[[:space:]]*(#.*)?$' single="^'([^']*)'[[:space:]]*(#.*)?\$"
    [ -e "$file" ] || [ -L "$file" ] || return 0
    if ! [ -f "$file" ] || ! [ -r "$file" ] || ! { : <"$file"; } 2>/dev/null; then
        _pod_dotenv_warn "cannot read $file (not a readable file): its variables are not loaded"
        return 1
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        number=$((number + 1))
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
        if ! [[ $line =~ $assignment ]]; then
            _pod_dotenv_warn "$file line $number: skipped, expected KEY=VALUE with a name of letters, digits and _"
            continue
        fi
        key=${BASH_REMATCH[2]} value=${BASH_REMATCH[3]}
        if [[ $value =~ $double || $value =~ $single ]]; then
            value=${BASH_REMATCH[1]}
        elif [[ $value == [\"\']* ]]; then
            _pod_dotenv_warn "$file line $number: skipped, the quote that opens the value of $key is not closed on that line"
            continue
        else
            value=${value%%[[:space:]]#*}
            value=${value%"${value##*[![:space:]]}"}
        fi
        export "$key=$value"
    done <"$file"
}

_pod_dotenv_warn() {
    if declare -F pod_dotenv_warn >/dev/null; then pod_dotenv_warn "$1"; fi
}
