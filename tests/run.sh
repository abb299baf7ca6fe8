#!/usr/bin/env bash
# The whole test suite on a fresh machine: the Debian packages the browser and HTML tests need
# (chromium, a Java runtime for the W3C Nu validator), a virtual environment with the package and
# its test extras, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=$(command -v sudo || true)
  if [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: cannot install ${need[*]} (not root, no sudo); the browser and HTML validator tests will be skipped" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# Scratch space: the tests build some 2.5 GB of knowledge bases and sites. Unless TMPDIR says where, they go
# to a folder in /dev/shm (memory) when it has room: on a virtual disk the same builds take up to twice as long,
# and vary with the disk. The folder goes when pytest ends.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] \
   && [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -gt $((6 * 1024 * 1024)) ]; then
  TMPDIR=$(mktemp -d /dev/shm/milkb-tests.XXXXXX)
  export TMPDIR
  trap 'rm -rf "$TMPDIR"' EXIT
fi
# One pytest-xdist worker per CPU; --dist loadfile keeps each test module on one worker, in order, so its
# module-scoped servers, sites and corpora are set up once.
.venv/bin/python -m pytest -q -n auto --dist loadfile "$@"
