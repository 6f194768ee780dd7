#!/usr/bin/env bash
# fuzz.sh PKG TARGET: fuzz TARGET of ./PKG for $FUZZTIME (default 5m) with
# $FUZZFLAGS. A failing input is written to PKG/testdata/fuzz/TARGET/ and fails
# the run.
#
# Go 1.26's fuzz coordinator can end a run at the -fuzztime deadline with a
# bare "context deadline exceeded" failure although no input failed: a race
# between its deadline and a worker's last call (go.dev/issue/75804, fixed in
# Go 1.27). Such a run counts as passed, with a line saying so, only when that
# is the whole failure and no failing input was written; anything else fails.
set -euo pipefail

pkg=${1:?usage: fuzz.sh PKG TARGET} target=${2:?usage: fuzz.sh PKG TARGET}
corpus=$pkg/testdata/fuzz/$target
log=$(mktemp)
trap 'rm -f "$log"' EXIT

inputs() { ls -A "$corpus" 2>/dev/null | sort || true; }

before=$(inputs)
set +e
# shellcheck disable=SC2086 # FUZZFLAGS is a list of flags
${GO:-go} test -run '^$' -fuzz "^$target\$" -fuzztime "${FUZZTIME:-5m}" ${FUZZFLAGS:-} "./$pkg" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] && exit 0

# The failure report is the lines after "--- FAIL: TARGET" up to the first
# line that is not indented.
report=$(awk -v t="--- FAIL: $target " '
	index($0, t) == 1 { in_report = 1; next }
	in_report && /^    / { print; next }
	in_report { exit }' "$log")
if [ "$report" = "    context deadline exceeded" ] && [ "$(inputs)" = "$before" ]; then
	echo "fuzz.sh: $target: the run ended at its -fuzztime deadline with no failing input (go.dev/issue/75804): passed"
	exit 0
fi
exit "$rc"
