#!/usr/bin/env bash
# check-tracked.sh fails when git tracks a build output: an executable binary
# (ELF or Mach-O, or a PE file or any file with the executable bit that has a
# NUL byte in its first 8 KiB) or a file larger than 2 MB. `make test` runs it first, so CI
# fails on such a commit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check-tracked: not a git checkout; skipped" >&2
  exit 0
fi

limit=$((2 * 1024 * 1024))

# has_nul reports whether the first 8 KiB of $1 hold a NUL byte (portable:
# no GNU grep -P, no GNU stat).
has_nul() {
  local all without
  all=$(head -c 8192 -- "$1" | wc -c | tr -d ' ')
  without=$(head -c 8192 -- "$1" | tr -d '\000' | wc -c | tr -d ' ')
  [[ "$all" != "$without" ]]
}
bad=0
while IFS= read -r -d '' f; do
  [[ -f "$f" ]] || continue # deleted in the work tree
  size=$(wc -c <"$f" | tr -d ' ')
  if ((size > limit)); then
    echo "check-tracked: $f is $size bytes (limit $limit): keep large files out of git" >&2
    bad=1
    continue
  fi
  magic=$(head -c 4 -- "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
  7f454c46 | cffaedfe | cefaedfe | feedfacf | feedface | cafebabe)
    echo "check-tracked: $f is an executable binary: build outputs belong in .gitignore" >&2
    bad=1
    continue
    ;;
  esac
  if [[ -x "$f" || "$magic" == 4d5a* ]] && has_nul "$f"; then
    echo "check-tracked: $f is executable and binary: build outputs belong in .gitignore" >&2
    bad=1
  fi
done < <(git ls-files -z)
exit "$bad"
