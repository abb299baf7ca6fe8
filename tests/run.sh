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
# One pytest-xdist worker per CPU; --dist loadfile keeps each test module on one worker, in order, so its
# module-scoped servers, sites and corpora are set up once.
exec .venv/bin/python -m pytest -q -n auto --dist loadfile "$@"
