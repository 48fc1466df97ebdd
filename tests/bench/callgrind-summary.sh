#!/bin/sh
# Print instructions per change from the parts zinv-bench --callgrind dumps.
# Each part's trigger names it "<label> changes=<n>" (see zb_cg_dump).
for f in "$@"; do
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
			printf "%-40s %14.0f Ir  %10.1f Ir per change\n", label, total, total / n
	}' "$f"
done
