#!/bin/sh
# Requests per second of 1, 2 and 4 zinv-server processes on one PostgreSQL
# database: the 10-change PUT (16 clients) and the location read alone (8
# clients), the clients spread evenly over the processes, one http_load.c
# per process at once (wrk is not on every machine), rates summed.  Run it
# under the throwaway cluster:
#
#     sh tests/pg/with-cluster.sh sh examples/zinv-server/bench_fleet.sh \
#         build/examples/zinv-server [SECONDS]
#
# Everything (clients, servers, PostgreSQL) shares this machine's cores.
set -eu
server=$(realpath "$1")
secs=${2:-8}
here=$(dirname "$(realpath "$0")")
: "${ZINV_TEST_PG:?run under tests/pg/with-cluster.sh}"
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill -TERM $p 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
cc -O2 -pthread -o "$tmp/http_load" "$here/http_load.c"
cd "$tmp"
echo '{"tokens":[{"token":"bench","organizationUuid":"2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c","scopes":["READ:PRODUCT","WRITE:PRODUCT"]}]}' > tokens.json
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Sum the PUT and GET rates of the http_load lines in the files $@.
sum() {
	awk '{ for (i = 1; i <= NF; i++) { if ($i == "PUT") p += $(i + 3); if ($i == "GET") g += $(i + 3);
	       if ($i == "failed") f += $(i + 1) } }
	     END { printf "PUT %.0f req/s   GET %.0f req/s   failed %d\n", p, g, f }' "$@"
}

for n in 1 2 4; do
	db="bench_$n"
	"$ZINV_TEST_PG_BIN/psql" -qX -d "$ZINV_TEST_PG" -c "CREATE DATABASE $db"
	ports=""
	pids=""
	for i in $(seq $n); do
		p=$(port)
		"$server" --listen 127.0.0.1:$p --db "$ZINV_TEST_PG dbname=$db" --tokens tokens.json \
			2>"server-$n-$i.log" &
		pids="$pids $!"
		ports="$ports $p"
	done
	for p in $ports; do
		until python3 -c "import socket; socket.create_connection(('127.0.0.1', $p), 0.2)" 2>/dev/null; do
			sleep 0.1
		done
	done
	store=$(python3 "$here/bench_http_setup.py" $(echo $ports | cut -d' ' -f1))
	sed -n 's/^wrk.body = \[\[\(.*\)\]\]$/\1/p' put.lua > put.json
	get="/organizations/self/inventory/locations/$store"
	for kind in put get; do
		rm -f out-*
		loads=""
		for p in $ports; do
			if [ $kind = put ]; then ./http_load $p "$secs" $((16 / n)) 0 put.json "$get" >out-$p &
			else ./http_load $p "$secs" 0 $((8 / n)) put.json "$get" >out-$p &
			fi
			loads="$loads $!"
		done
		for l in $loads; do wait $l; done
		printf '%d process(es), %-3s  %s\n' $n $kind "$(sum out-*)"
	done
	for p in $pids; do kill -TERM $p; wait $p || true; done
	pids=""
done
