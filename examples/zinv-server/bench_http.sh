#!/bin/sh
# Requests per second of zinv-server for a 10-change PUT and a location
# read, with 1 and 16 concurrent clients, on the SQLite and memory stores.
#
#     sh examples/zinv-server/bench_http.sh build/examples/zinv-server [SECONDS]
#
# Needs wrk (Debian package wrk).  Loopback only.
set -eu
server=$(realpath "$1")
secs=${2:-8}
here=$(dirname "$(realpath "$0")")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=18601
cd "$tmp"
echo '{"tokens":[{"token":"bench","organizationUuid":"2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c","scopes":["READ:PRODUCT","WRITE:PRODUCT"]}]}' > tokens.json
for db in "$tmp/bench.db" :memory:; do
	"$server" --listen 127.0.0.1:$port --db "$db" --tokens tokens.json 2>/dev/null &
	pid=$!
	sleep 0.5
	store=$(python3 "$here/bench_http_setup.py" $port)
	for c in 1 16; do
		t=$([ $c = 1 ] && echo 1 || echo 2)
		put=$(wrk -t $t -c $c -d ${secs}s -s put.lua \
		      http://127.0.0.1:$port/organizations/self/inventory | awk '/Requests\/sec/ {print $2}')
		get=$(wrk -t $t -c $c -d ${secs}s -s get.lua \
		      "http://127.0.0.1:$port/organizations/self/inventory/locations/$store" |
		      awk '/Requests\/sec/ {print $2}')
		printf '%-10s clients=%-3s PUT (10 changes) %10s req/s   GET location %10s req/s\n' \
		    "$(basename "$db")" $c "$put" "$get"
	done
	kill -TERM $pid
	wait $pid
done
