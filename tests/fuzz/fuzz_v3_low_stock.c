/* libFuzzer target: inv_json_decode_v3_low_stock(). */
#include "fuzz.h"

static inv_json_v3_low_stock *out;
static size_t count;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_v3_low_stock(&out, &count, violations, text, len);
}

static void fuzz_check(void)
{
	size_t i;

	if (count == 0)
		abort();
	/* v3: a level of 0 arrives as "no level". */
	for (i = 0; i < count; i++)
		if (out[i].entry.has_level)
			check_quantity(out[i].entry.level, 1);
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
