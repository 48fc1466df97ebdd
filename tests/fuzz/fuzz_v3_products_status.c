/* libFuzzer target: inv_json_decode_v3_products_status(). */
#include "fuzz.h"

static inv_uuid *out;
static size_t count;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_v3_products_status(&out, &count, violations, text, len);
}

static void fuzz_check(void)
{
	/* Nothing beyond the decoder's return code to check. */
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
