/*
 * uuid.c - UUID text form.  Parsing is on the hot path of every codec, so it
 * is a table-free hand loop rather than libuuid's sscanf-based parser.
 */
#include <string.h>

#include <zinv/common.h>
#include "error_int.h"

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20; /* fold to lowercase */
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int inv_uuid_parse(inv_uuid *out, const char *text, size_t len)
{
	inv_uuid u;
	size_t i, b = 0;

	if (!out || !text || len != INV_UUID_STRLEN)
		return INV_EINVAL;
	for (i = 0; i < INV_UUID_STRLEN;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return INV_EINVAL;
			i++;
			continue;
		}
		hi = hex_value((unsigned char)text[i]);
		lo = hex_value((unsigned char)text[i + 1]);
		if (hi < 0 || lo < 0)
			return INV_EINVAL;
		u.bytes[b++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	*out = u;
	return 0;
}

void inv_uuid_format(const inv_uuid *uuid, char out[37])
{
	static const char digits[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = digits[uuid->bytes[i] >> 4];
		out[o++] = digits[uuid->bytes[i] & 15];
	}
	out[o] = '\0';
}

int inv_uuid_compare(const inv_uuid *a, const inv_uuid *b)
{
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}
