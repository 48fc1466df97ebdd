/*
 * error.c - per-thread error detail, inv_strerror(), inv_free(), inv_version().
 *
 * The detail is thread-local so that concurrent callers never see each
 * other's errors; it is the library's only mutable state outside a store.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zinv/backend.h>
#include "error_int.h"

struct error_slot {
	inv_error pub;
	char message[512];
	char field[128];
};

static _Thread_local struct error_slot last_error = {
	.pub = { .code = 0, .index = -1, .message = "", .field = NULL },
};

static void error_vset(int code, int64_t index, const char *field,
                       const char *fmt, va_list ap)
{
	struct error_slot *e = &last_error;

	e->pub.code = code;
	e->pub.index = index;
	if (fmt)
		vsnprintf(e->message, sizeof(e->message), fmt, ap);
	else
		snprintf(e->message, sizeof(e->message), "%s", inv_strerror(code));
	e->pub.message = e->message;
	if (field) {
		snprintf(e->field, sizeof(e->field), "%s", field);
		e->pub.field = e->field;
	} else {
		e->pub.field = NULL;
	}
}

int inv__error(int code, int64_t index, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(code, index, field, fmt, ap);
	va_end(ap);
	return code;
}

int inv__error_keep(int code, int64_t index, const char *fmt, ...)
{
	struct error_slot *e = &last_error;
	va_list ap;

	if (e->pub.code == code && e->message[0] != '\0') {
		e->pub.index = index;
		return code;
	}
	va_start(ap, fmt);
	error_vset(code, index, NULL, fmt, ap);
	va_end(ap);
	return code;
}

void inv__error_set_index(int64_t index)
{
	last_error.pub.index = index;
}

const inv_error *inv_error_last(void)
{
	return &last_error.pub;
}

void inv_error_clear(void)
{
	struct error_slot *e = &last_error;

	e->pub.code = 0;
	e->pub.index = -1;
	e->message[0] = '\0';
	e->pub.message = e->message;
	e->pub.field = NULL;
}

int inv_backend_error(int code, const char *message)
{
	return inv__error(code, -1, NULL, "%s", message ? message : inv_strerror(code));
}

const char *inv_strerror(int code)
{
	switch (code) {
	case INV_OK: return "success";
	case INV_EINVAL: return "invalid argument";
	case INV_ENOMEM: return "out of memory";
	case INV_ENOTFOUND: return "not found";
	case INV_ENOTTRACKED: return "product is not tracked";
	case INV_EMISMATCH: return "variant belongs to another product";
	case INV_EINSUFFICIENT: return "insufficient stock";
	case INV_ECONFLICT: return "conflict";
	case INV_ERANGE: return "balance out of range";
	case INV_EBACKEND: return "storage backend failure";
	case INV_EBUSY: return "storage busy, retry";
	case INV_EVERSION: return "unsupported version";
	case INV_EFORMAT: return "not a libzinv store, corrupt, or newer schema";
	case INV_EREADONLY: return "store is read-only";
	case INV_ETOOBIG: return "request too large";
	default: return "unknown error";
	}
}

const char *inv_version(void)
{
	return INV_VERSION_STRING;
}

void inv_free(void *ptr)
{
	free(ptr);
}
