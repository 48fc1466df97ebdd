#!/bin/sh
# Mechanical ABI checks of libzinv's shared libraries, one subcommand per
# make target (see the "ABI" section of the Makefile, which passes the
# paths).  Each prints what differs and exits non-zero on any difference.
#
#   abi.sh exports  LIB.so LIST           exported symbols == LIST, all inv_*
#   abi.sh map      MAP HEADER...         version script == INV_EXTERN decls
#   abi.sh headers  CC CXX HEADER...      each header alone, C99 and C++
#   abi.sh soname   LIB.so SONAME         DT_SONAME is SONAME
#   abi.sh dump     LIB.so OUT.abi        abidw baseline, reproducible
#   abi.sh diff     LIB.so BASE.abi SUPPR abidiff; any change fails
#   abi.sh man      MANDIR LIB.so...      a page per export, groff-clean
#   abi.sh symbols  LIB.so                print the normalized export list
set -eu

die() { echo "$*" >&2; exit 1; }

# name@@VERSION per exported symbol, and the version nodes themselves, one a
# line, sorted: moving a function to another node is a change too.
symbols() {
	nm -D --defined-only --format=posix "$1" | awk '{ print $1 }' | LC_ALL=C sort
}

# Functions declared with INV_EXTERN in the given headers.  Comments and
# preprocessor lines are dropped first so that the macro's own definition
# and prose mentioning it never count.
header_functions() {
	for h in "$@"; do
		# grep fails on a header of only #includes (zinv.h); that is fine.
		gcc -fpreprocessed -dD -E -P "$h" 2>/dev/null | grep -v '^[[:space:]]*#' || true
	done | tr '\n' ' ' | grep -oE 'INV_EXTERN[^;(]*\(' |
		sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/' |
		LC_ALL=C sort
}

map_functions() {
	sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);.*/\1/p' "$1" | LC_ALL=C sort
}

# One abidw configuration for baselines and fresh dumps alike: public types
# only (those reachable from include/), no paths, no line numbers, hashed
# type ids, so the file depends on the ABI and not on where or how often it
# was built.
abidw_run() {
	# Without DWARF abidw would describe symbols only and miss every type.
	readelf -S "$1" | grep -q '\.debug_info' ||
		die "abi: $1 has no debug info; build with -g (the default CFLAGS)"
	abidw --headers-dir include --drop-private-types --no-corpus-path \
	    --no-comp-dir-path --no-show-locs --type-id-style hash \
	    --out-file "$2" "$1"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
symbols)
	symbols "$1"
	;;
exports)
	lib=$1 list=$2
	[ -f "$list" ] || die "check-exports: $list missing; run 'make abi-dump' and commit it"
	got=$(mktemp); trap 'rm -f "$got"' EXIT
	symbols "$lib" > "$got"
	bad=$(grep -v '^inv_' "$got" | grep -v '^ZINV[A-Z_]*_[0-9][0-9.]*$' || true)
	[ -z "$bad" ] || die "check-exports: $lib exports names outside inv_: $bad"
	if ! diff -u "$list" "$got" >&2; then
		die "check-exports: $lib exports differ from $list (- committed, + built).
If the change is intended, run 'make abi-dump' and commit the new list."
	fi
	echo "check-exports: $lib: $(grep -c '^inv_' "$got") functions, as committed"
	;;
map)
	map=$1; shift
	a=$(mktemp); b=$(mktemp); trap 'rm -f "$a" "$b"' EXIT
	map_functions "$map" > "$a"
	header_functions "$@" > "$b"
	[ -s "$a" ] || die "check-map: no names found in $map"
	if ! diff -u "$a" "$b" >&2; then
		die "check-map: $map (-) and INV_EXTERN in $* (+) disagree"
	fi
	echo "check-map: $map: $(wc -l < "$a") names, same as the headers"
	;;
headers)
	cc=$1 cxx=$2; shift 2
	tu=$(mktemp -d); trap 'rm -rf "$tu"' EXIT
	n=0
	for h in "$@"; do
		inc=${h#include/}
		# Twice, to prove the include guard.  (A typedef, because a header
		# of only macros leaves an empty translation unit, which -pedantic
		# rejects.)  Then every *_INIT macro of the header must initialize
		# its struct completely (-Wextra: missing-field-initializers).
		{
			printf '#include <%s>\n#include <%s>\ntypedef int tu_not_empty;\n' "$inc" "$inc"
			sed -n 's/^#define \(INV_[A-Z0-9_]*\)_INIT\b.*/\1/p' "$h" | while read -r m; do
				t=$(echo "$m" | tr 'A-Z' 'a-z')
				printf 'void init_%s(void);\nvoid init_%s(void) { %s x = %s_INIT; (void)x; }\n' \
				    "$t" "$t" "$t" "$m"
			done
		} > "$tu/t.c"
		$cc -std=c99 -Wall -Wextra -pedantic -Werror -Wstrict-prototypes -Wundef \
		    -Iinclude -fsyntax-only -x c "$tu/t.c" ||
			die "check-headers: $h does not compile alone as C99 (or an _INIT macro is incomplete)"
		$cxx -std=c++11 -Wall -Wextra -pedantic -Werror -Wundef \
		    -Iinclude -fsyntax-only -x c++ "$tu/t.c" ||
			die "check-headers: $h does not compile alone as C++ (or an _INIT macro is incomplete)"
		n=$((n + 1))
	done
	echo "check-headers: $n headers self-contained as C99 and C++"
	;;
soname)
	lib=$1 want=$2
	got=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ "$got" = "$want" ] || die "check-soname: $lib has soname '$got', expected '$want'"
	echo "check-soname: $lib: $got"
	;;
dump)
	# Rewrite the baseline only when the ABI differs, so that a rebuild
	# (other object order, other compiler) never churns the committed file.
	new=$(mktemp); trap 'rm -f "$new"' EXIT
	abidw_run "$1" "$new"
	if [ -f "$2" ] && abidiff --harmless --no-show-locs "$2" "$new" >/dev/null 2>&1 &&
	    [ -z "$(abidiff --harmless --no-show-locs "$2" "$new" 2>&1)" ]; then
		echo "abi-dump: $2 already describes $1"
	else
		cp "$new" "$2"
		echo "abi-dump: wrote $2"
	fi
	;;
diff)
	lib=$1 base=$2 suppr=$3
	[ -f "$base" ] || die "abi-check: $base missing; run 'make abi-dump' and commit it"
	new=$(mktemp); trap 'rm -f "$new"' EXIT
	abidw_run "$lib" "$new"
	set -- --no-show-locs
	[ -f "$suppr" ] && set -- "$@" --suppressions "$suppr"
	# abidiff's exit status is a bit set: 1 error, 2 usage, 4 ABI change
	# (additions included), 8 incompatible change.  Anything non-zero fails,
	# so an addition passes only once the committed baseline contains it.
	rc=0
	abidiff "$@" "$base" "$new" >&2 || rc=$?
	if [ $rc -ne 0 ]; then
		[ $((rc & 3)) -ne 0 ] && die "abi-check: abidiff failed to run (status $rc)"
		[ $((rc & 8)) -ne 0 ] && die "abi-check: $lib breaks the ABI of $base (see above)"
		die "abi-check: $lib differs from $base (see above).
If the change is an intended addition, run 'make abi-dump' and commit the baseline with it."
	fi
	# abidiff calls some changes harmless (an enumerator appended, a
	# typedef renamed) and passes them.  The policy allows them, but the
	# baseline must still say so: anything --harmless reports fails too.
	harmless=$(abidiff --harmless "$@" "$base" "$new" 2>&1 || true)
	if [ -n "$harmless" ]; then
		echo "$harmless" >&2
		die "abi-check: $lib has compatible changes that $base does not record (see above).
If they are intended, run 'make abi-dump' and commit the baseline with them."
	fi
	echo "abi-check: $lib matches $base"
	;;
man)
	mandir=$1; shift
	missing=""
	exports=$(for lib in "$@"; do symbols "$lib"; done |
		sed -n 's/^\(inv_[A-Za-z0-9_]*\)@.*/\1/p')
	for f in $exports; do
		[ -f "$mandir/man3/$f.3" ] || missing="$missing $f"
	done
	[ -z "$missing" ] || die "check-man: exported without a man page:$missing"
	# A stub must point at a page whose NAME section lists it, and the
	# SYNOPSIS of the page an exported function leads to must declare it
	# (a stub alone documents nothing).  One awk over all pages: a process
	# per page is slow on a loaded machine.
	bad=$(echo "$exports" | awk '
		FILENAME == "-" { if ($1 != "") export[$1] = 1; next }
		FNR == 1 { page = FILENAME; sub(/.*\//, "", page); sub(/\.3$/, "", page); sec = ""
		           if ($1 == ".so") { t = $2; sub(/^man3\//, "", t); sub(/\.3$/, "", t); stub[page] = t; nextfile } }
		/^\.SH / { sec = $2; next }
		sec == "NAME" { line = $0; sub(/\\-.*/, "", line); n = split(line, w, /[ ,]+/)
		                for (i = 1; i <= n; i++) if (w[i] != "") named[page, w[i]] = 1 }
		sec == "SYNOPSIS" { syn[page] = syn[page] " " $0 }
		END { for (s in stub) if (!((stub[s], s) in named))
		          printf " %s: stub of %s, whose NAME does not list it;", s, stub[s]
		      for (f in export) { p = (f in stub) ? stub[f] : f
		          if (index(syn[p], f "(") == 0)
		              printf " %s: not declared in the SYNOPSIS of %s.3;", f, p } }' - "$mandir"/man3/*.3)
	[ -z "$bad" ] || die "check-man:$bad"
	# Every cross-reference to a libzinv page must resolve.
	refs=$(sed -n 's/^\.BR \(inv_[A-Za-z0-9_]*\|libzinv\) (3).*/\1/p' "$mandir"/man3/*.3 | sort -u)
	for r in $refs; do
		[ -f "$mandir/man3/$r.3" ] || missing="$missing $r"
	done
	[ -z "$missing" ] || die "check-man: referenced but no such page:$missing"
	n=0
	for p in "$mandir"/man3/*.3; do
		# Stubs were checked above; formatting them again is slow and
		# proves nothing new.  -ww: every warning.
		read -r first < "$p"
		case $first in .so\ *) continue ;; esac
		out=$(cd "$mandir" && groff -z -ww -man -t "man3/${p##*/}" 2>&1) ||
			die "check-man: groff failed on $p: $out"
		[ -z "$out" ] || die "check-man: $p: $out"
		n=$((n + 1))
	done
	echo "check-man: $n pages and their stubs, every export covered, groff clean"
	;;
*)
	die "usage: $0 exports|map|headers|soname|dump|diff|man|symbols ..."
	;;
esac
