/* libFuzzer target: inv_json_decode_start_tracking(). */
#include "fuzz.h"

static inv_uuid out;

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations)
{
	return inv_json_decode_start_tracking(&out, violations, text, len);
}

static void fuzz_check(void)
{
	/* Nothing beyond the decoder's return code to check. */
}

static void fuzz_free(void)
{
	/* Nothing allocated. */
}

FUZZ_DECODER_TARGET
