/* libFuzzer target: inv_json_decode_v3_products(). */
#include "fuzz.h"

static inv_tracking_change *out;
static size_t count;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_v3_products(&out, &count, violations, text, len);
}

static void fuzz_check(void)
{
	size_t i;

	if (count == 0)
		abort();
	for (i = 0; i < count; i++)
		if (out[i].action != INV_TRACKING_START && out[i].action != INV_TRACKING_STOP)
			abort();
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
