/* libFuzzer target: inv_json_decode_low_stock(). */
#include "fuzz.h"

static inv_low_stock out;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_low_stock(&out, violations, text, len);
}

static void fuzz_check(void)
{
	if (out.has_level)
		check_quantity(out.level, 0);
}

static void fuzz_free(void)
{
	/* Nothing allocated. */
}

FUZZ_DECODER_TARGET
