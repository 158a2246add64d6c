# shellcheck shell=bash
# Shell helpers of the pod, sourced by interactive shells and /workspace/.bashrc_pod.
#   proj NAME         cd into the project NAME under /workspace/code (at any of
#                     the first three levels, e.g. code/personal-research/NAME,
#                     or a path like personal-research/NAME) and activate its .venv
#   new-project NAME  create /workspace/code/NAME with a uv .venv that imports
#                     the image's baked packages (/opt/venv) without reinstalling them

POD_CODE_DIR=${POD_CODE_DIR:-$(sed -n 's/^POD_CODE_DIR_DEFAULT=//p' /usr/local/lib/imagebuild/entrypoint/contract.env 2>/dev/null)}

# _proj_find NAME: the project folders matching NAME, one per line.
_proj_find() {
    local name=${1%/} dir
    case $name in
        '' | /* | *..*) return 1 ;;
    esac
    for dir in "$POD_CODE_DIR/$name" "$POD_CODE_DIR"/*/"$name" "$POD_CODE_DIR"/*/*/"$name"; do
        [ -d "$dir" ] && printf '%s\n' "$dir"
    done
}

proj() {
    local name=${1:-} matches
    if [ -z "$name" ]; then
        echo "usage: proj NAME   (projects: $(_proj_list | tr '\n' ' '))" >&2
        return 2
    fi
    mapfile -t matches < <(_proj_find "$name")
    if [ ${#matches[@]} -eq 0 ]; then
        echo "proj: no project $name under $POD_CODE_DIR (new-project $name creates one)" >&2
        return 1
    fi
    if [ ${#matches[@]} -gt 1 ]; then
        # Several folders of that name: the one project (with a .venv) wins.
        local match with_venv=()
        for match in "${matches[@]}"; do [ -d "$match/.venv" ] && with_venv+=("$match"); done
        [ ${#with_venv[@]} -eq 1 ] && matches=("${with_venv[@]}")
    fi
    if [ ${#matches[@]} -gt 1 ]; then
        echo "proj: $name is ambiguous, use a path under $POD_CODE_DIR:" >&2
        printf '  %s\n' "${matches[@]#"$POD_CODE_DIR"/}" >&2
        return 1
    fi
    cd "${matches[0]}" || return 1
    if [ -f .venv/bin/activate ]; then
        # shellcheck disable=SC1091
        . .venv/bin/activate
    else
        echo "proj: $PWD has no .venv (pod-venv .venv creates one)" >&2
    fi
}

# _proj_list: project folders (those with a .venv) relative to the code folder.
_proj_list() {
    local venv
    for venv in "$POD_CODE_DIR"/*/.venv "$POD_CODE_DIR"/*/*/.venv "$POD_CODE_DIR"/*/*/*/.venv; do
        [ -d "$venv" ] || continue
        venv=${venv%/.venv}
        printf '%s\n' "${venv#"$POD_CODE_DIR"/}"
    done
}

_proj_complete() {
    local word=${COMP_WORDS[COMP_CWORD]} item
    COMPREPLY=()
    while IFS= read -r item; do
        [[ $item == "$word"* ]] && COMPREPLY+=("$item")
        [[ ${item##*/} == "$word"* && $item == */* ]] && COMPREPLY+=("${item##*/}")
    done < <(_proj_list)
}
complete -F _proj_complete proj 2>/dev/null

new-project() {
    local name=${1:-}
    case $name in
        '' | /* | *..* | -*)
            echo "usage: new-project NAME   (creates $POD_CODE_DIR/NAME; NAME may be nested, e.g. personal-research/NAME)" >&2
            return 2 ;;
    esac
    local dir=$POD_CODE_DIR/${name%/}
    if [ -d "$dir/.venv" ]; then
        echo "new-project: $dir already has a .venv; use: proj $name" >&2
        return 1
    fi
    mkdir -p "$dir" || return 1
    [ -e "$dir/requirements.txt" ] || : >"$dir/requirements.txt"
    pod-venv "$dir/.venv" || return 1
    proj "${name%/}"
}

# A GPU check that failed at this start: pod-canary's line (its file is named in contract.env).
_pod_canary_motd=$(sed -n 's/^POD_CANARY_MOTD=//p' /usr/local/lib/imagebuild/entrypoint/contract.env 2>/dev/null)
if [ -n "$_pod_canary_motd" ] && [ -r "$_pod_canary_motd" ] && [[ $- == *i* ]]; then
    cat "$_pod_canary_motd" >&2
fi
unset _pod_canary_motd
