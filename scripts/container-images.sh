#!/usr/bin/env bash
# Build local equivalents of every image the containers provider needs, from Debian
# packages, with podman; no image registry is contacted (docs/stack.md, "Offline: images
# built from Debian packages"). Idempotent: an image that exists is skipped. Prints the
# images and the --certload-images value that uses them.
#
#   scripts/container-images.sh                build what is missing, then print
#   scripts/container-images.sh --print        only print the --certload-images value
#   scripts/container-images.sh --missing      only print the images not built yet (the
#                                              base first)
#
# One base image holds Debian bookworm and the packages (postgresql-15, nginx, apache2,
# haproxy, python3), made by mmdebstrap from the Debian mirror; each image is a small
# layer on it (its configuration and command), built without network. The double's image
# adds this project and its dependencies as wheels, which pip fetches on this side
# through your pip configuration (offline: PIP_NO_INDEX=1 PIP_FIND_LINKS=/your/wheels).
# An image's tag carries a hash of what it is built from, so a change builds a new one.
#
# Needs root, podman, runc, netavark, aardvark-dns and mmdebstrap; on Debian/Ubuntu:
#   apt-get install podman runc netavark aardvark-dns mmdebstrap
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
# DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security), PYTHON (the
# Python whose pip fetches the wheels; default .venv/bin/python, else python3),
# CONTAINERS_CONF (default scripts/container-images/containers.conf).
set -euo pipefail
cd "$(dirname "$0")/.."
here=scripts/container-images

suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
packages=(postgresql-15 nginx apache2 media-types haproxy python3 python3-venv)
# the double's wheels are fetched for the base's Python (bookworm's python3), whatever
# Python runs this script
image_python=3.11

hash_of() { cat "$@" | sha256sum | cut -c1-10; }
base="localhost/certload/debian:$suite-$(echo "$suite ${packages[*]}" | sha256sum | cut -c1-10)"
role_tag() { # <upstream version> <files the image is built from>
    local version=$1
    shift
    echo "$version-$(echo "$base" | cat - "$@" | sha256sum | cut -c1-10)"
}
project_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)
mapfile -d '' project_files < <(
    find pytest_certload pyproject.toml -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
        -print0 | LC_ALL=C sort -z
)
declare -A image=(
    [postgres]="localhost/certload/postgres:$(role_tag 15 "$here/postgres.Containerfile" "$here/postgres-entrypoint.sh")"
    [nginx]="localhost/certload/nginx:$(role_tag 1.22 "$here/nginx.Containerfile")"
    [apache]="localhost/certload/httpd:$(role_tag 2.4 "$here/httpd.Containerfile")"
    [haproxy]="localhost/certload/haproxy:$(role_tag 2.6 "$here/haproxy.Containerfile")"
    [double]="localhost/certload/double:$(role_tag "$project_version" "$here/double.Containerfile" "${project_files[@]}")"
)
order=(postgres nginx apache haproxy double)
value=""
for role in postgres certctl nginx apache haproxy f5; do
    case "$role" in
        certctl | f5) name="${image[double]}" ;;
        *) name="${image[$role]}" ;;
    esac
    value+="${value:+,}$role=$name"
done

# the machine's own podman configuration is left alone; a CONTAINERS_CONF of yours wins
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/$here/containers.conf}"

case "${1:-}" in
    --print)
        echo "$value"
        exit 0
        ;;
    --missing)
        podman image exists "$base" 2>/dev/null || echo "$base"
        for key in "${order[@]}"; do
            podman image exists "${image[$key]}" 2>/dev/null || echo "${image[$key]}"
        done
        exit 0
        ;;
    "") ;;
    *)
        echo "usage: $0 [--print | --missing]" >&2
        exit 2
        ;;
esac

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
for helper in netavark aardvark-dns; do
    [ -x "/usr/lib/podman/$helper" ] || [ -x "/usr/libexec/podman/$helper" ] ||
        command -v "$helper" >/dev/null || missing+=("$helper")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "container-images: missing ${missing[*]}; on Debian/Ubuntu:" \
        "apt-get install ${missing[*]}" >&2
    exit 1
fi

exists() { podman image exists "$1"; }
took() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
work=$(mktemp -d "${TMPDIR:-/tmp}/certload-images-XXXXXX")
trap 'rm -rf "$work"' EXIT
all_start=$EPOCHREALTIME

if exists "$base"; then
    echo "container-images: $base exists, skipped"
else
    if ! command -v mmdebstrap >/dev/null; then
        echo "container-images: the base image needs mmdebstrap;" \
            "on Debian/Ubuntu: apt-get install mmdebstrap" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "container-images: building the base image needs root (mmdebstrap and podman" \
            "import); run this script as root" >&2
        exit 1
    fi
    start=$EPOCHREALTIME
    echo "container-images: $base: Debian $suite with ${packages[*]} from $mirror ..."
    packages_csv=$(IFS=,; echo "${packages[*]}")
    # the package's default cluster is dropped: the postgres image makes its own
    if ! mmdebstrap --variant=minbase --include="$packages_csv" \
        --aptopt='APT::Install-Recommends "false"' \
        --customize-hook='chroot "$1" pg_dropcluster 15 main' \
        "$suite" "$work/base.tar" \
        "deb $mirror $suite main" "deb $mirror $suite-updates main" \
        "deb $security_mirror $suite-security main" >"$work/mmdebstrap.log" 2>&1; then
        tail -20 "$work/mmdebstrap.log" >&2
        echo "container-images: mmdebstrap failed (log above); check DEBIAN_MIRROR" >&2
        exit 1
    fi
    podman import --quiet --change 'CMD ["/bin/bash"]' "$work/base.tar" "$base" >/dev/null
    rm -f "$work/base.tar"
    echo "container-images: built $base in $(took "$start") s"
fi

build() { # <image> <Containerfile> <context>
    local name=$1 file=$2 context=$3 start=$EPOCHREALTIME
    # no network: everything comes from the base and the build context
    if ! podman build --quiet --network none --build-arg "BASE=$base" \
        --label "io.pytest-certload.built-by=scripts/container-images.sh" \
        -f "$file" -t "$name" "$context" >"$work/build.log" 2>&1; then
        tail -30 "$work/build.log" >&2
        echo "container-images: building $name from $file failed (log above)" >&2
        exit 1
    fi
    echo "container-images: built $name in $(took "$start") s"
}

for key in postgres nginx apache haproxy; do
    if exists "${image[$key]}"; then
        echo "container-images: ${image[$key]} exists, skipped"
        continue
    fi
    case "$key" in
        apache) file="$here/httpd.Containerfile" ;;
        *) file="$here/$key.Containerfile" ;;
    esac
    build "${image[$key]}" "$file" "$here"
done

if exists "${image[double]}"; then
    echo "container-images: ${image[double]} exists, skipped"
else
    python="${PYTHON:-}"
    if [ -z "$python" ]; then
        if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
    fi
    start=$EPOCHREALTIME
    context="$work/double"
    mkdir -p "$context/project" "$context/deps"
    cp "$here/double.Containerfile" "$context/"
    # the project as a wheel, then its dependencies as binary wheels for the base's
    # Python and every manylinux tag bookworm's glibc (2.36) accepts (pip expands only
    # manylinux2014, to 2010 and 1)
    platforms=(--platform "manylinux2014_$(uname -m)")
    for minor in $(seq 5 36); do platforms+=(--platform "manylinux_2_${minor}_$(uname -m)"); done
    # (built from a copy: building in the checkout would leave build/ behind)
    mkdir -p "$work/src"
    tar -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md pytest_certload |
        tar -x -C "$work/src"
    if ! "$python" -m pip wheel -q --no-deps --wheel-dir "$context/project" "$work/src" \
        >"$work/pip.log" 2>&1 ||
        ! "$python" -m pip download -q --only-binary=:all: --dest "$context/deps" \
            --python-version "$image_python" --implementation cp "${platforms[@]}" \
            "$context"/project/pytest_certload-*.whl >>"$work/pip.log" 2>&1; then
        tail -30 "$work/pip.log" >&2
        echo "container-images: fetching the wheels with $python -m pip failed (log above)" >&2
        exit 1
    fi
    rm -f "$context"/deps/pytest_certload-*.whl
    echo "container-images: the double's wheels fetched in $(took "$start") s"
    build "${image[double]}" "$context/double.Containerfile" "$context"
fi

echo "container-images: ready in $(took "$all_start") s:"
for key in "${order[@]}"; do
    echo "  ${image[$key]}"
done
echo "use them with:"
echo "  --certload-images $value"
