#!/bin/sh
# Print instructions per change from the parts `zinv-bench --callgrind`
# dumped under callgrind (files PREFIX.1, PREFIX.2, ...), in run order.
# Each part's trigger names it "<label> changes=<n>" (see zb_cg_dump).
prefix=$1
echo "instructions per item: a change, or a variant for the status encode"
ls "$prefix".* 2>/dev/null | sort -t. -k"$(echo "$prefix" | tr -cd . | wc -c | awk '{print $1 + 2}')" -n |
while read -r f; do
	awk '
	/^desc: Trigger: Client Request: / {
		sub(/^desc: Trigger: Client Request: /, "")
		label = $0
	}
	/^(summary|totals): / { total = $2 }
	END {
		n = label
		sub(/.* changes=/, "", n)
		sub(/ changes=[0-9]+$/, "", label)
		if (label != "" && n > 0)
			printf "%-48s %12.1f\n", label, total / n
	}' "$f"
done
