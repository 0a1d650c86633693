#!/bin/sh
# Create the virtual environment; on a fresh Debian, python3 -m venv needs python3-venv first.
set -e
python=${1:-python3}
venv=${2:-.venv}
if "$python" -m venv "$venv" 2>/dev/null; then
    exit 0
fi
rm -rf "$venv"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "make-venv: installing Debian's python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null; }
    exec "$python" -m venv "$venv"
fi
echo "make-venv: '$python -m venv' failed; install python3-venv (Debian) and run make again" >&2
exit 1
