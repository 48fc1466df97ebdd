/* libFuzzer target: inv_json_decode_product_filter(). */
#include "fuzz.h"

static inv_json_product_filter *out;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_product_filter(&out, violations, text, len);
}

static void fuzz_check(void)
{
	if (out->location_type < INV_LOCATION_STORE || out->location_type > INV_LOCATION_SUPPLIER)
		abort();
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
