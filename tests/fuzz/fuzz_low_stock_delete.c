/* libFuzzer target: inv_json_decode_low_stock_delete(). */
#include "fuzz.h"

static inv_low_stock *out;
static size_t count;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_low_stock_delete(&out, &count, violations, text, len);
}

static void fuzz_check(void)
{
	if (count == 0)
		abort();
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
