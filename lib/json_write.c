/*
 * json_write.c - the writer the response encoders use: JSON text appended
 * to one growing buffer, byte for byte what jansson's compact dump of the
 * same tree wrote (keys in order, no spaces, the same escapes), without a
 * tree to build and free.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error_int.h"
#include "json_int.h"

void inv__jw_init(inv__jw *w, size_t size_hint)
{
	w->buf = NULL;
	w->len = 0;
	w->cap = 0;
	w->comma = 0;
	w->failed = 0;
	if (size_hint) {
		w->buf = malloc(size_hint);
		if (w->buf)
			w->cap = size_hint;
		else
			w->failed = 1;
	}
}

/* Room for `n` more bytes at w->buf + w->len, or NULL once an allocation
 * has failed (every later write is then dropped). */
static char *room(inv__jw *w, size_t n)
{
	size_t cap;
	char *buf;

	if (w->failed)
		return NULL;
	if (w->cap - w->len >= n)
		return w->buf + w->len;
	cap = w->cap ? w->cap : 256;
	while (cap - w->len < n) {
		if (cap > SIZE_MAX / 2) {
			w->failed = 1;
			return NULL;
		}
		cap *= 2;
	}
	buf = realloc(w->buf, cap);
	if (!buf) {
		w->failed = 1;
		return NULL;
	}
	w->buf = buf;
	w->cap = cap;
	return w->buf + w->len;
}

/* Room for a value of at most `n` bytes, after the ',' that separates it
 * from the previous element when there is one. */
static char *value_room(inv__jw *w, size_t n)
{
	char *p = room(w, n + 1);

	if (p && w->comma) {
		*p = ',';
		w->len++;
		p++;
	}
	w->comma = 1;
	return p;
}

void inv__jw_open(inv__jw *w, char bracket)
{
	char *p = value_room(w, 1);

	if (p) {
		*p = bracket;
		w->len++;
	}
	w->comma = 0;
}

void inv__jw_close(inv__jw *w, char bracket)
{
	char *p = room(w, 1);

	if (p) {
		*p = bracket;
		w->len++;
	}
	w->comma = 1;
}

void inv__jw_key(inv__jw *w, const char *key)
{
	size_t n = strlen(key);
	char *p = value_room(w, n + 3);

	if (p) {
		p[0] = '"';
		memcpy(p + 1, key, n);
		p[n + 1] = '"';
		p[n + 2] = ':';
		w->len += n + 3;
	}
	w->comma = 0;
}

/* The escape of byte `c` (RFC 8259 section 7, as jansson writes it: the
 * two-character forms where they exist, else \u00XX in capitals); NULL when
 * the byte stands for itself. */
static const char *escape_of(unsigned char c, char seq[7])
{
	static const char hex[] = "0123456789ABCDEF";

	switch (c) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\b': return "\\b";
	case '\f': return "\\f";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	default:
		if (c >= 0x20)
			return NULL;
		memcpy(seq, "\\u00", 4);
		seq[4] = hex[c >> 4];
		seq[5] = hex[c & 15];
		seq[6] = '\0';
		return seq;
	}
}

void inv__jw_string(inv__jw *w, const char *s, size_t n)
{
	char *p, seq[7];
	size_t i;

	/* Worst case: every byte a six-character escape. */
	if (n > (SIZE_MAX - 3) / 6) {
		w->failed = 1;
		return;
	}
	p = value_room(w, 6 * n + 2);
	if (!p)
		return;
	*p++ = '"';
	for (i = 0; i < n; i++) {
		const char *e = escape_of((unsigned char)s[i], seq);

		if (e) {
			size_t el = strlen(e);

			memcpy(p, e, el);
			p += el;
		} else {
			*p++ = s[i];
		}
	}
	*p++ = '"';
	w->len = (size_t)(p - w->buf);
}

void inv__jw_cstr(inv__jw *w, const char *s)
{
	inv__jw_string(w, s, strlen(s));
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when it is not
 * one: the checks of jansson's json_string() (no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static size_t utf8_length(const unsigned char *s, size_t n)
{
	uint32_t v;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] < 0xc2)
		return 0;
	if (s[0] < 0xe0)
		len = 2, v = s[0] & 0x1f;
	else if (s[0] < 0xf0)
		len = 3, v = s[0] & 0x0f;
	else if (s[0] < 0xf5)
		len = 4, v = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || (len == 3 && v < 0x800) ||
	    (len == 4 && v < 0x10000))
		return 0;
	return len;
}

static int utf8_valid(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t k = utf8_length((const unsigned char *)s + i, n - i);

		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

void inv__jw_text(inv__jw *w, const char *s)
{
	char safe[512];
	size_t i, n;

	if (!s)
		s = "";
	n = strlen(s);
	if (utf8_valid(s, n)) {
		inv__jw_string(w, s, n);
		return;
	}
	for (i = 0; i < sizeof(safe) - 1 && s[i]; i++)
		safe[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	inv__jw_string(w, safe, i);
}

void inv__jw_uuid(inv__jw *w, const inv_uuid *uuid)
{
	char *p = value_room(w, INV_UUID_STRLEN + 2);

	if (!p)
		return;
	/* inv_uuid_format() writes 36 characters and a NUL; the NUL lands
	 * where the closing quote goes. */
	p[0] = '"';
	inv_uuid_format(uuid, p + 1);
	p[INV_UUID_STRLEN + 1] = '"';
	w->len += INV_UUID_STRLEN + 2;
}

/* The decimal text of `n` (as "%" PRId64 writes it) into out[20]. */
static size_t int_text(char out[20], int64_t n)
{
	uint64_t u = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
	char rev[20];
	size_t i = 0, o = 0;

	do {
		rev[i++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (n < 0)
		out[o++] = '-';
	while (i)
		out[o++] = rev[--i];
	return o;
}

static void put_int(inv__jw *w, int64_t n, int quoted)
{
	char text[20];
	size_t len = int_text(text, n), q = quoted ? 1 : 0;
	char *p = value_room(w, len + 2 * q);

	if (!p)
		return;
	if (quoted)
		p[0] = p[len + 1] = '"';
	memcpy(p + q, text, len);
	w->len += len + 2 * q;
}

void inv__jw_int(inv__jw *w, int64_t n)
{
	put_int(w, n, 0);
}

void inv__jw_int_string(inv__jw *w, int64_t n)
{
	put_int(w, n, 1);
}

static void put_literal(inv__jw *w, const char *text, size_t n)
{
	char *p = value_room(w, n);

	if (p) {
		memcpy(p, text, n);
		w->len += n;
	}
}

void inv__jw_bool(inv__jw *w, int value)
{
	if (value)
		put_literal(w, "true", 4);
	else
		put_literal(w, "false", 5);
}

void inv__jw_null(inv__jw *w)
{
	put_literal(w, "null", 4);
}

int inv__jw_finish(inv__jw *w, char **out, size_t *len)
{
	char *p = room(w, 1);

	if (!p) {
		free(w->buf);
		w->buf = NULL;
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	*p = '\0';
	*out = w->buf;
	*len = w->len;
	w->buf = NULL;
	return 0;
}
