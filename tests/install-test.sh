#!/bin/sh
# Install into a scratch DESTDIR with PREFIX=/usr, then build and run a
# program against that install the way a user would: pkg-config only,
# nothing from the source tree.  Run by `make check-install`.
#
#   tests/install-test.sh [make args...]   (e.g. CC=clang)
set -eu

MAKE=${MAKE:-make}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
dest=$(mktemp -d "${TMPDIR:-/tmp}/zinv-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT INT TERM

$MAKE -s install DESTDIR="$dest" PREFIX=/usr "$@" >/dev/null

lib="$dest/usr/lib"
for f in libzinv.so.1 libzinv.so libzinv.a pkgconfig/zinv.pc; do
	[ -e "$lib/$f" ] || { echo "install test: $lib/$f missing" >&2; exit 1; }
done
[ -f "$dest/usr/include/zinv.h" ] || { echo "install test: zinv.h missing" >&2; exit 1; }

# The sysroot prefixes -I/-L with $dest; the system's own .pc files (jansson,
# uuid) are still found through the default search path.
export PKG_CONFIG_SYSROOT_DIR="$dest"
export PKG_CONFIG_PATH="$lib/pkgconfig"
cflags=$($PKG_CONFIG --cflags zinv)
libs=$($PKG_CONFIG --libs zinv)
case "$cflags $libs" in
*"$dest/usr/include"*"$dest/usr/lib"*) ;;
*) echo "install test: pkg-config did not point into the install: $cflags $libs" >&2; exit 1 ;;
esac

src=$(dirname "$0")/install/consumer.c

# Shared: the soname link must resolve at run time from the install.
$CC -std=c99 -Wall -Wextra -Werror -o "$dest/consumer" "$src" $cflags $libs
LD_LIBRARY_PATH="$lib" "$dest/consumer"
needed=$(LD_LIBRARY_PATH="$lib" ldd "$dest/consumer" | grep 'libzinv\.so')
case "$needed" in
*"$lib/libzinv.so.1"*) ;;
*) echo "install test: consumer loaded $needed, not the installed library" >&2; exit 1 ;;
esac

# The README's usage example, taken from README.md itself so that it can
# never drift from the library: it must compile cleanly and print what its
# comments promise.
readme=$(dirname "$0")/../README.md
awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' "$readme" > "$dest/readme.c"
[ -s "$dest/readme.c" ] || { echo "install test: no C example in README.md" >&2; exit 1; }
$CC -std=c99 -Wall -Wextra -Werror -o "$dest/readme" "$dest/readme.c" $cflags $libs
out=$(LD_LIBRARY_PATH="$lib" "$dest/readme")
case "$out" in
*"balance 7"*"change 0 refused"*) ;;
*) echo "install test: README example printed:" >&2; echo "$out" >&2; exit 1 ;;
esac

# Static: libzinv.a plus `pkg-config --static` must be a complete link line.
static_libs=$($PKG_CONFIG --static --libs zinv | sed 's/-lzinv//')
$CC -std=c99 -o "$dest/consumer-static" "$src" $cflags "$lib/libzinv.a" $static_libs
"$dest/consumer-static" >/dev/null

# libzinv-sqlite, when it was built and installed: its .pc pulls in zinv.
if [ -e "$lib/pkgconfig/zinv-sqlite.pc" ]; then
	for f in libzinv-sqlite.so.1 libzinv-sqlite.so libzinv-sqlite.a; do
		[ -e "$lib/$f" ] || { echo "install test: $lib/$f missing" >&2; exit 1; }
	done
	[ -f "$dest/usr/include/zinv/sqlite.h" ] || { echo "install test: zinv/sqlite.h missing" >&2; exit 1; }
	$CC -std=c99 -Wall -Wextra -Werror -o "$dest/consumer-sqlite" \
	    "$(dirname "$0")/install/consumer-sqlite.c" \
	    $($PKG_CONFIG --cflags zinv-sqlite) $($PKG_CONFIG --libs zinv-sqlite)
	LD_LIBRARY_PATH="$lib" "$dest/consumer-sqlite" "$dest/test.db"
	rm -f "$dest/consumer-sqlite" "$dest"/test.db*
	echo "install test: libzinv-sqlite installed, linkable, durable"
fi

# libzinv-postgres likewise, against a throwaway cluster.
if [ -e "$lib/pkgconfig/zinv-postgres.pc" ]; then
	for f in libzinv-postgres.so.1 libzinv-postgres.so libzinv-postgres.a; do
		[ -e "$lib/$f" ] || { echo "install test: $lib/$f missing" >&2; exit 1; }
	done
	[ -f "$dest/usr/include/zinv/postgres.h" ] || { echo "install test: zinv/postgres.h missing" >&2; exit 1; }
	$CC -std=c99 -Wall -Wextra -Werror -o "$dest/consumer-postgres" \
	    "$(dirname "$0")/install/consumer-postgres.c" \
	    $($PKG_CONFIG --cflags zinv-postgres) $($PKG_CONFIG --libs zinv-postgres)
	LD_LIBRARY_PATH="$lib" sh "$(dirname "$0")/pg/with-cluster.sh" \
	    sh -c '"$0" "$ZINV_TEST_PG"' "$dest/consumer-postgres"
	rm -f "$dest/consumer-postgres"
	echo "install test: libzinv-postgres installed, linkable, durable"
fi

# Uninstall leaves nothing behind but directories.
$MAKE -s uninstall DESTDIR="$dest" PREFIX=/usr "$@" >/dev/null
rm -f "$dest/consumer" "$dest/consumer-static" "$dest/readme" "$dest/readme.c"
left=$(find "$dest" -not -type d)
[ -z "$left" ] || { echo "install test: uninstall left: $left" >&2; exit 1; }
echo "install test: ok"
