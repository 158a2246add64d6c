# shellcheck shell=bash
# duration_s TEXT: seconds of a duration like 45m, 2h, 1h30m, 90s or 90 into
# $duration_s; status 1 when TEXT is not one (the same rules as imagebuild's).
duration_s() {
    local text=${1,,} h=0 m=0 s=0
    if ! [[ $text =~ ^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s?)?$ ]] || [ -z "$text" ]; then
        return 1
    fi
    h=${BASH_REMATCH[2]:-0} m=${BASH_REMATCH[4]:-0} s=${BASH_REMATCH[6]:-0}
    duration_s=$((10#$h * 3600 + 10#$m * 60 + 10#$s))
}
