#!/usr/bin/env bash
# The system tools some tests start or call, installed when this machine allows it (`make test` runs this).
# Debian's packages: prometheus (promtool, and a Prometheus server for the alert tests), wrk (the load
# generator's wrk engine), chromium (the headless browser that renders the offline docs and reports) and
# redis-server (the real broker the streaming tests start on loopback).
# With root or passwordless sudo and apt-get they are installed; otherwise this says which are missing and
# the command that installs them, and those tests are skipped (in CI, where CI=true, they fail instead:
# tests/system_tools.py::system_tool). Never fails itself.
declare -A PACKAGE=([promtool]=prometheus [prometheus]=prometheus [wrk]=wrk [chromium]=chromium [redis-server]=redis-server)
missing=()
for tool in "${!PACKAGE[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
install="apt-get install -y --no-install-recommends $packages"
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" != none ]; then
    echo "system tools: installing $packages(Debian packages the tests use)"
    if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo $install -qq >/dev/null; then exit 0; fi
  fi
fi
echo "system tools: missing $packages- the tests that need them are skipped; install with: sudo $install"
