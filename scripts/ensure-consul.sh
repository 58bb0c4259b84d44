#!/usr/bin/env bash
# ensure-consul.sh prints the path of a usable consul binary on stdout.
#
# Order: $CONSUL_BIN if set, a consul already on PATH, the cached pinned build in
# .cache/consul/<version>/consul, else build the pinned version from the Go module
# proxy (about 4 minutes on 2 cores) and cache it. Progress goes to stderr so
# callers can capture the path: CONSUL=$(scripts/ensure-consul.sh).
set -euo pipefail

CONSUL_VERSION="${CONSUL_VERSION:-v1.20.6}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${GRPCKIT_CACHE:-$root/.cache}/consul/$CONSUL_VERSION"
bin="$cache/consul"

say() { printf 'ensure-consul: %s\n' "$*" >&2; }

if [[ -n "${CONSUL_BIN:-}" ]]; then
  [[ -x "$CONSUL_BIN" ]] || { say "CONSUL_BIN=$CONSUL_BIN is not executable"; exit 1; }
  echo "$CONSUL_BIN"; exit 0
fi
if p="$(command -v consul 2>/dev/null)"; then
  echo "$p"; exit 0
fi
if [[ -x "$bin" ]]; then
  echo "$bin"; exit 0
fi

command -v go >/dev/null || { say "go is not on PATH; install Go 1.26 first"; exit 1; }
mkdir -p "$cache"
# One builder at a time: parallel test packages may all ask for Consul.
exec 9>"$cache/.lock"
if command -v flock >/dev/null && ! flock -n 9; then
  say "waiting for another build of consul $CONSUL_VERSION to finish (lock $cache/.lock)"
  flock 9
  if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
fi

say "consul not found on PATH; building consul $CONSUL_VERSION from the Go module proxy"
say "this takes about 4 minutes on 2 cores and happens once (cached in $cache)"
json="$(GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/consul@$CONSUL_VERSION")"
src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)"
[[ -n "$src" && -d "$src" ]] || { say "go mod download gave no module directory:"; printf '%s\n' "$json" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/grpckit-consul-build.XXXXXX")"
pid=""
# On exit or interruption: stop the build and remove the scratch copy.
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work" "$bin.tmp.$$"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cp -r "$src/." "$work/"
chmod -R u+w "$work"
# The replace block points at nested modules inside the consul repository; they
# are published separately on the proxy, so drop it and resolve them normally.
awk 'BEGIN{skip=0} /^replace[[:space:]]*\(/{skip=1; next} skip&&/^\)/{skip=0; next} !skip && !/^replace[[:space:]]/' \
  "$work/go.mod" >"$work/go.mod.new"
mv "$work/go.mod.new" "$work/go.mod"

start=$SECONDS
( cd "$work" && exec env GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp.$$" . ) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 15 & wait $! || true
  kill -0 "$pid" 2>/dev/null && say "still building consul ($((SECONDS - start))s)"
done
wait "$pid" || { pid=""; say "building consul failed"; exit 1; }
pid=""
mv "$bin.tmp.$$" "$bin"
say "built $("$bin" version | head -n 1) in $((SECONDS - start))s"
echo "$bin"
