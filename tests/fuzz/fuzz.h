/*
 * fuzz.h - shared body of the decoder fuzz targets (libFuzzer).
 *
 * A target includes this file, defines fuzz_decode() (calls the decoder),
 * fuzz_check() (what a successful decode promises) and fuzz_free(), and
 * ends with FUZZ_DECODER_TARGET.  Every run checks the rules a decoder promises whatever the
 * input: 0, INV_EINVAL, INV_ETOOBIG or INV_ENOMEM; on INV_EINVAL a
 * violation list whose entries have a property, a message and a constraint
 * name, and which the error encoder turns into valid JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zinv.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_violations(inv_json_violations *v)
{
	size_t i, n = inv_json_violations_count(v), len;
	char *body = NULL;
	json_error_t err;
	json_t *parsed;

	for (i = 0; i < n; i++) {
		const inv_json_violation *x = inv_json_violations_at(v, i);

		if (!x || !x->property || !x->message || !x->message[0] ||
		    !inv_json_constraint_name(x->constraint))
			abort();
	}
	if (n > 100)
		abort();
	if (inv_json_encode_error(&body, &len, "VALIDATION_ERROR", "m",
	                          n ? inv_json_violations_at(v, 0) : NULL, n) != 0)
		abort();
	parsed = json_loadb(body, len, 0, &err);
	if (!parsed || json_array_size(json_object_get(parsed, "violations")) != n)
		abort();
	json_decref(parsed);
	inv_free(body);
}

static void check_quantity(int64_t q, int64_t min)
{
	if (q < min || q > INV_QUANTITY_MAX)
		abort();
}

static int fuzz_decode(const char *text, size_t len, inv_json_violations **violations);
static void fuzz_check(void);
static void fuzz_free(void);

#define FUZZ_DECODER_TARGET \
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) \
{ \
	inv_json_violations *v = NULL; \
	int rc = fuzz_decode((const char *)data, size, &v); \
 \
	if (rc == 0) { \
		if (v) \
			abort(); \
		fuzz_check(); \
	} else if (rc == INV_EINVAL) { \
		if (!v) \
			abort(); \
		check_violations(v); \
	} else if (rc != INV_ETOOBIG && rc != INV_ENOMEM) { \
		abort(); \
	} \
	inv_json_violations_free(v); \
	fuzz_free(); \
	return 0; \
}
