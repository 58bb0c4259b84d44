#!/usr/bin/env bash
# ensure-chromium.sh prints the path of a headless-capable Chromium on stdout,
# for the browser test of the /debug/kit page.
#
# Order: $CHROMIUM_BIN if set, chromium or chromium-browser on PATH, else
# Debian's chromium package, installed with apt-get (needs root, or sudo without
# a password; about a minute). Progress goes to stderr.
set -euo pipefail

say() { printf 'ensure-chromium: %s\n' "$*" >&2; }

if [[ -n "${CHROMIUM_BIN:-}" ]]; then
  [[ -x "$CHROMIUM_BIN" ]] || { say "CHROMIUM_BIN=$CHROMIUM_BIN is not executable"; exit 1; }
  echo "$CHROMIUM_BIN"; exit 0
fi
for name in chromium chromium-browser; do
  if p="$(command -v "$name" 2>/dev/null)"; then echo "$p"; exit 0; fi
done

sudo=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null && sudo -n true 2>/dev/null || {
    say "chromium is not installed and installing it needs root: apt-get install chromium"; exit 1; }
  sudo="sudo -n"
fi
command -v apt-get >/dev/null || { say "chromium is not installed and apt-get is not available"; exit 1; }

# One installer at a time: parallel test packages may all ask.
lock="${TMPDIR:-/tmp}/grpckit-ensure-chromium.lock"
exec 9>"$lock"
command -v flock >/dev/null && flock 9
if p="$(command -v chromium 2>/dev/null)"; then echo "$p"; exit 0; fi

say "installing Debian's chromium package (once; about a minute)"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends chromium >&2; then
  say "install failed; refreshing the package lists and trying again"
  $sudo apt-get update >&2
  $sudo apt-get install -y --no-install-recommends chromium >&2
fi
p="$(command -v chromium)" || { say "chromium still not on PATH after the install"; exit 1; }
echo "$p"
