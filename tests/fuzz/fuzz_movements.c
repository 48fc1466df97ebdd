/* libFuzzer target: inv_json_decode_movements(). */
#include "fuzz.h"

static inv_json_changes *out;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_movements(&out, violations, text, len);
}

static void fuzz_check(void)
{
	size_t i;

	for (i = 0; i < out->count; i++)
		check_quantity(out->changes[i].quantity, 1);
}

static void fuzz_free(void)
{
	inv_free(out);
	out = NULL;
}

FUZZ_DECODER_TARGET
