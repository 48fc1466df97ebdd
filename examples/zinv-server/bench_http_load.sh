#!/bin/sh
# bench_http.sh without wrk: requests per second of zinv-server for a
# 10-change PUT with 1 and 16 clients, a location read alone, and the same
# read (2 clients) while 16 clients PUT, on the SQLite (sync FULL) and
# memory stores, with http_load.c as the load generator.
#
#     sh examples/zinv-server/bench_http_load.sh build/examples/zinv-server [SECONDS]
set -eu
server=$(realpath "$1")
secs=${2:-8}
here=$(dirname "$(realpath "$0")")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -pthread -o "$tmp/http_load" "$here/http_load.c"
port=18611
cd "$tmp"
echo '{"tokens":[{"token":"bench","organizationUuid":"2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c","scopes":["READ:PRODUCT","WRITE:PRODUCT"]}]}' > tokens.json
for db in "$tmp/bench.db" :memory:; do
	"$server" --listen 127.0.0.1:$port --db "$db" --tokens tokens.json 2>/dev/null &
	pid=$!
	sleep 0.5
	store=$(python3 "$here/bench_http_setup.py" $port)
	sed -n 's/^wrk.body = \[\[\(.*\)\]\]$/\1/p' put.lua > put.json
	get="/organizations/self/inventory/locations/$store"
	name=$(basename "$db")
	for c in 1 16; do
		printf '%-10s %s\n' "$name" "$(./http_load $port "$secs" $c 0 put.json "$get")"
	done
	printf '%-10s %s\n' "$name" "$(./http_load $port "$secs" 0 2 put.json "$get")"
	printf '%-10s %s\n' "$name" "$(./http_load $port "$secs" 16 2 put.json "$get")"
	kill -TERM $pid
	wait $pid
done
