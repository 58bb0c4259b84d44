#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of both modules (the root module and the kit,
# through go.work) for FUZZTIME each (default 60s), one after the other. A
# failing input is written by `go test` under the package's
# testdata/fuzz/<Target>/ directory: commit it with the fix, so that `go test`
# replays it from then on. Usage: scripts/fuzz.sh [package pattern...]
# (default: ./... ./kit/...).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fuzztime="${FUZZTIME:-60s}"
patterns=("$@")
((${#patterns[@]} > 0)) || patterns=(./... ./kit/...)

failed=()
total=0
for pkg in $(go list "${patterns[@]}"); do
  dir="$(go list -f '{{.Dir}}' "$pkg")"
  # Fuzz targets are declared in the package's test files.
  targets="$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' || true)"
  for t in $targets; do
    total=$((total + 1))
    printf '==> %s %s (%s)\n' "$pkg" "$t" "$fuzztime"
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg"; then
      failed+=("$pkg $t")
    fi
  done
done

printf '==> %d fuzz targets, %d failed\n' "$total" "${#failed[@]}"
if ((${#failed[@]} > 0)); then
  printf '    failed: %s\n' "${failed[@]}"
  exit 1
fi
