#!/bin/sh
# Smoke test of pos-demo, run by `make check`: it must exit 0, tell the
# story's key facts, and tell the same story on the memory store and on the
# default store (SQLite when built), since clock and UUIDs are injected.
#
#   smoke.sh PATH-TO-POS-DEMO SCRATCH-DIR
#
# DEMO_WRAPPER, when set, runs the demo under a tool (valgrind).
set -u
demo=$1
dir=$2
mkdir -p "$dir"
status=0

fail() {
	echo "pos-demo smoke: $*" >&2
	status=1
}

run() {
	out=$1
	shift
	${DEMO_WRAPPER:-} "$demo" "$@" >"$out" 2>&1 || fail "exit status $? for: $demo $*"
}

run "$dir/demo-memory.out" --memory
run "$dir/demo-default.out" --db "$dir/smoke.db"
rm -f "$dir/smoke.db" "$dir/smoke.db-wal" "$dir/smoke.db-shm" "$dir/smoke.db-journal"

expect() {
	grep -Eq -- "$1" "$dir/demo-memory.out" || fail "missing line matching: $1"
}

# The sale's gift-card line is skipped, the stale count refused, the mugs
# cross their low-stock level, and the final balances are right.
expect 'skipped line 2: Gift card / 25 EUR \(not tracked\)'
expect 'refused: conflict'
expect '^  LowStock +[0-9]+ +Mug / White +became low: balance 2 < level 3'
expect '^  Coffee beans 1kg +Dark roast +15 '
expect '^  Coffee beans 1kg +Light roast +18 '
expect '^  Mug +White +2 +3 +on .*LOW$'
expect '^  +1 +09:00 +de11e000-0000-4000-8000-000000000001 +tracking started +Coffee beans 1kg'
expect 'move SUPPLIER +-> STORE +20 +Coffee beans 1kg / Dark roast +0 -> 20'

if ! diff -u "$dir/demo-memory.out" "$dir/demo-default.out" | grep -v '^[-+]store:' |
	grep -q '^[-+][^-+]'; then
	:
else
	fail "memory and default store tell different stories:"
	diff -u "$dir/demo-memory.out" "$dir/demo-default.out" >&2
fi

[ $status = 0 ] && echo "pos-demo smoke: ok"
exit $status
