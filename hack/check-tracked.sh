#!/usr/bin/env bash
# Refuses build outputs in git: every tracked file over 1 MiB must be test
# data listed in hack/large-files.txt (one path per line), and go.mod must
# be tidy. Run by make lint.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
allowed=$(grep -v '^#' hack/large-files.txt 2>/dev/null || true)
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt 1048576 ] && ! grep -qxF "$f" <<<"$allowed"; then
    echo "tracked file over 1 MiB that is not listed test data: $f ($size bytes); build outputs belong in .gitignore" >&2
    status=1
  fi
done < <(git ls-files -z)
before=$(cat go.mod go.sum | sha256sum)
go mod tidy
if [ "$(cat go.mod go.sum | sha256sum)" != "$before" ]; then
  echo "go.mod/go.sum were not tidy (go mod tidy changed them; commit the result)" >&2
  status=1
fi
exit $status
