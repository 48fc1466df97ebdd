#!/bin/sh
# Write a `.so` stub man page for every name in the NAME section of each
# primary page in man/man3, so that `man inv_result_count` finds the page
# of its group.  Run from anywhere after adding a name to a NAME section;
# commit the stubs it writes.  `make check-man` fails when one is missing.
set -eu
cd "$(dirname "$0")/man3"

# The names of a page: its NAME section up to "\-", split at commas.
names() {
	sed -n '/^\.SH NAME/,/^\.SH /{/^\.SH/d;p;}' "$1" | tr '\n' ' ' |
		sed 's/\\-.*//' | tr ',' '\n' | tr -d ' '
}

for page in *.3; do
	head -n 1 "$page" | grep -q '^\.so ' && continue
	primary=${page%.3}
	for n in $(names "$page"); do
		[ "$n" = "$primary" ] && continue
		[ -f "$n.3" ] && ! head -n 1 "$n.3" | grep -q '^\.so ' &&
			{ echo "stubs: $n has a page of its own and is named in $page" >&2; exit 1; }
		echo ".so man3/$page" > "$n.3"
	done
done
