#!/usr/bin/env bash
# Run the given tests N times in a row and print, for each, how many runs passed.
#
#   bench/repeat.sh tests/e2e/test_sentinel.py tests/e2e/test_faults.py -n 10
#
# A test id is anything pytest takes (a file, file::test).  Each run of each
# test is its own pytest process, so that one run's failure cannot hide the
# next.  The output and temporary files (worker logs) of a failed run are kept
# under the directory printed at the start; those of a passed run are removed.
# Exit status: 0 when every run passed.
set -u

runs=10
tests=()
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs="$2"; shift 2 ;;
        -n*) runs="${1#-n}"; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) tests+=("$1"); shift ;;
    esac
done
if [ ${#tests[@]} -eq 0 ]; then
    echo "usage: $0 TEST... [-n RUNS]" >&2
    exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
keep="$(mktemp -d "${TMPDIR:-/tmp}/repeat.XXXXXX")"
echo "$runs runs of ${#tests[@]} test(s); failed runs kept in $keep"

declare -A passed
for test in "${tests[@]}"; do passed[$test]=0; done

for run in $(seq 1 "$runs"); do
    for test in "${tests[@]}"; do
        name="run$run-$(echo "$test" | tr '/:.' '___')"
        started=$(date +%s)
        if (cd "$root" && "$python" -m pytest "$test" -q -x -p no:cacheprovider --basetemp="$keep/$name" >"$keep/$name.out" 2>&1); then
            passed[$test]=$((passed[$test] + 1))
            verdict=pass
            rm -rf "${keep:?}/$name" "$keep/$name.out"
        else
            verdict="FAIL (see $keep/$name.out)"
        fi
        echo "run $run/$runs  $test: $verdict in $(($(date +%s) - started)) s"
    done
done

echo "tally:"
status=0
for test in "${tests[@]}"; do
    echo "  ${passed[$test]}/$runs  $test"
    [ "${passed[$test]}" -eq "$runs" ] || status=1
done
exit $status
