# shellcheck shell=bash disable=SC2154 # WS, POD_LOG_DIR...: set by bin/pod-entrypoint
# Steps "vendor-files" and "sapien": every program sees each GPU once, and SAPIEN's
# PhysX GPU library is found without a download at every start.

# The loaders' search folders: Vulkan drivers (ICDs), Vulkan implicit layers, EGL vendors.
POD_VK_ICD_DIRS=(/etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/share/vulkan/icd.d)
POD_VK_LAYER_DIRS=(/etc/vulkan/implicit_layer.d /usr/local/share/vulkan/implicit_layer.d /usr/share/vulkan/implicit_layer.d)
POD_EGL_DIRS=(/etc/glvnd/egl_vendor.d /usr/share/glvnd/egl_vendor.d)
POD_HIDDEN_SUFFIX=.hidden-by-pod
# Where the sim layer bakes libPhysXGpu_64.so (imagebuild/physx.py BAKED_DIR).
POD_PHYSX_DIR=/usr/local/lib/sapien-physx

# vendor_key FILE: which driver a vendor file loads, into $vendor_key: the library's
# file name; every NVIDIA library counts as one driver (the driver's own file may
# name libEGL_nvidia where the image's names libGLX_nvidia).
vendor_key() {
    local line library=""
    while IFS= read -r line || [ -n "$line" ]; do  # a last line without a newline too
        if [[ $line =~ \"library_path\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]]; then
            library=${BASH_REMATCH[1]}
            break
        fi
    done <"$1"
    library=${library##*/}
    case $library in
        *nvidia*) vendor_key=nvidia ;;
        "") vendor_key=${1##*/} ;;
        *) vendor_key=$library ;;
    esac
}

# Mount points of this container: a vendor file the runtime injected is one (a
# bind-mounted file), or lies under one (a bind-mounted folder).
pod_mount_points() {
    local _id _parent _dev _root point _rest
    POD_MOUNTS=()
    while read -r _id _parent _dev _root point _rest; do
        [ "$point" = / ] || POD_MOUNTS+=("$point")
    done </proc/self/mountinfo
}

is_injected() {
    local point
    for point in "${POD_MOUNTS[@]}"; do
        case $1 in "$point" | "$point"/*) return 0 ;; esac
    done
    return 1
}

# dedupe_vendor_files KIND DIR...: where the runtime injected a vendor file for a
# driver the image also ships one for, the image's copy is hidden (renamed, so the
# loaders skip it); once the runtime injects none, it comes back.
dedupe_vendor_files() {
    local kind=$1 dir file
    shift
    local -A injected=()
    local used=() hidden=() restored=()
    for dir in "$@"; do
        for file in "$dir"/*.json; do
            if [ -f "$file" ] && is_injected "$file"; then
                vendor_key "$file"
                injected[$vendor_key]=1
            fi
        done
    done
    for dir in "$@"; do
        for file in "$dir"/*.json "$dir"/*.json"$POD_HIDDEN_SUFFIX"; do
            [ -f "$file" ] || continue
            vendor_key "$file"
            if is_injected "$file"; then
                used+=("$file (runtime)")
            elif [ -n "${injected[$vendor_key]:-}" ]; then
                case $file in
                    *"$POD_HIDDEN_SUFFIX") hidden+=("${file%"$POD_HIDDEN_SUFFIX"}") ;;
                    *) if mv -f "$file" "$file$POD_HIDDEN_SUFFIX" 2>/dev/null; then hidden+=("$file")
                       else warn "vendor-files: cannot hide $file (read-only?): $kind may list a GPU twice"
                           used+=("$file"); fi ;;
                esac
            elif [[ $file == *"$POD_HIDDEN_SUFFIX" ]]; then
                mv -f "$file" "${file%"$POD_HIDDEN_SUFFIX"}" && restored+=("${file%"$POD_HIDDEN_SUFFIX"}")
                used+=("${file%"$POD_HIDDEN_SUFFIX"}")
            else
                used+=("$file")
            fi
        done
    done
    local line="vendor-files: $kind in use: ${used[*]:-none}"
    if [ ${#hidden[@]} -gt 0 ]; then line+="; the image's copy hidden (the runtime injected its own): ${hidden[*]}"; fi
    if [ ${#restored[@]} -gt 0 ]; then line+="; restored: ${restored[*]}"; fi
    info "$line"
}

step_vendor_files() {
    pod_mount_points
    dedupe_vendor_files "Vulkan drivers" "${POD_VK_ICD_DIRS[@]}"
    dedupe_vendor_files "Vulkan implicit layers" "${POD_VK_LAYER_DIRS[@]}"
    dedupe_vendor_files "EGL vendors" "${POD_EGL_DIRS[@]}"
    local name
    for name in VK_DRIVER_FILES VK_ICD_FILENAMES __EGL_VENDOR_LIBRARY_FILENAMES; do
        if [ -n "${!name:-}" ]; then info "vendor-files: $name is set: that loader reads only ${!name}"; fi
    done
    return 0
}

# Without a baked library, enable_gpu() downloads it into ~/.sapien/physx/<version>/:
# kept on the volume, shared by root and dev, it is downloaded once per volume.
step_sapien() {
    local baked=("$POD_PHYSX_DIR"/*/libPhysXGpu_64.so) home
    if [ -f "${baked[0]}" ]; then
        info "sapien: PhysX GPU library baked in (${baked[*]}), linked from ~/.sapien/physx of root and dev"
        return 0
    fi
    if [ -z "$WS_WRITABLE" ]; then
        warn "sapien: $WS not writable: enable_gpu() downloads the PhysX GPU library at every start"
        return 0
    fi
    for home in /root /home/dev; do
        [ -d "$home" ] || continue
        link_home_entry "$home" .sapien .cache/sapien
        chown -h "$(stat -c %u:%g "$home")" "$home/.sapien"
    done
    info "sapien: ~/.sapien of root and dev on the volume ($WS/.cache/sapien): the PhysX GPU library is downloaded once per volume"
}
