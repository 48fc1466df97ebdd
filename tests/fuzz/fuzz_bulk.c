/* libFuzzer target: inv_json_decode_bulk(). */
#include "fuzz.h"

static inv_json_bulk *out;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_bulk(&out, violations, text, len);
}

static void fuzz_check(void)
{
	size_t i, sum = 0;

	/* The products' change ranges tile the flat change array in order. */
	for (i = 0; i < out->product_count; i++) {
		if (out->products[i].first_change != sum)
			abort();
		sum += out->products[i].change_count;
	}
	if (sum != out->change_count || sum > INV_JSON_MAX_CHANGES)
		abort();
	for (i = 0; i < out->change_count; i++)
		check_quantity(out->changes[i].quantity, 1);
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
