/* libFuzzer target: inv_json_decode_low_stock_many(). */
#include "fuzz.h"

static inv_low_stock *out;
static size_t count;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_low_stock_many(&out, &count, violations, text, len);
}

static void fuzz_check(void)
{
	size_t i;

	if (count == 0)
		abort();
	for (i = 0; i < count; i++)
		if (out[i].has_level)
			check_quantity(out[i].level, 0);
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
