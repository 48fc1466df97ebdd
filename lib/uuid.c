/*
 * uuid.c - UUID text form.  Parsing and formatting are on the hot path of
 * every codec (four UUIDs per change in, three per variant out), so they
 * are table loops rather than libuuid's sscanf-based parser.
 */
#include <stdint.h>
#include <string.h>

#include <zinv/common.h>
#include "error_int.h"

/* Where the two hex digits of each byte stand in the 36-character text;
 * the dashes are at 8, 13, 18 and 23. */
static const uint8_t digit_at[16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };

/* One more than the value of each hex digit, either case; 0 for every
 * other byte. */
static const uint8_t hex_plus_one[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int inv_uuid_parse(inv_uuid *out, const char *text, size_t len)
{
	const unsigned char *t = (const unsigned char *)text;
	unsigned seen = 0;
	inv_uuid u;
	size_t b;

	if (!out || !text || len != INV_UUID_STRLEN)
		return INV_EINVAL;
	if (t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-')
		return INV_EINVAL;
	/* No branch per digit: a byte that is not one turns into a value
	 * above 15, which `seen` keeps until the one test at the end. */
	for (b = 0; b < 16; b++) {
		unsigned hi = hex_plus_one[t[digit_at[b]]] - 1u;
		unsigned lo = hex_plus_one[t[digit_at[b] + 1]] - 1u;

		seen |= hi | lo;
		u.bytes[b] = (uint8_t)(hi << 4 | lo);
	}
	if (seen > 15)
		return INV_EINVAL;
	*out = u;
	return 0;
}

void inv_uuid_format(const inv_uuid *uuid, char out[37])
{
	static const char digits[] = "0123456789abcdef";
	size_t b;

	for (b = 0; b < 16; b++) {
		out[digit_at[b]] = digits[uuid->bytes[b] >> 4];
		out[digit_at[b] + 1] = digits[uuid->bytes[b] & 15];
	}
	out[8] = out[13] = out[18] = out[23] = '-';
	out[INV_UUID_STRLEN] = '\0';
}

int inv_uuid_compare(const inv_uuid *a, const inv_uuid *b)
{
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}
