/*
 * zinv/common.h - export macro, UUIDs, error codes and error detail.
 *
 * Part of the public API of libzinv; include <zinv.h> rather than this file.
 */
#ifndef ZINV_COMMON_H
#define ZINV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The one export macro: every public function carries it. */
#if defined(_WIN32)
#  if defined(INV_BUILDING_LIBRARY)
#    define INV_EXTERN __declspec(dllexport)
#  else
#    define INV_EXTERN
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define INV_EXTERN __attribute__((visibility("default")))
#else
#  define INV_EXTERN
#endif

/*
 * Error codes.  Every fallible call returns 0 or one of these (always < 0).
 * Values are frozen; new codes are only ever appended.
 */
typedef enum inv_error_code {
	INV_OK = 0,
	INV_EINVAL = -1,        /* bad argument: NULL, zero/negative/too large quantity,
	                           same from/to, foreign handle, malformed value */
	INV_ENOMEM = -2,        /* out of memory */
	INV_ENOTFOUND = -3,     /* no such location, organization or record */
	INV_ENOTTRACKED = -4,   /* the product is not tracked */
	INV_EMISMATCH = -5,     /* the variant already belongs to another product */
	INV_EINSUFFICIENT = -6, /* DENY policy: a STORE balance would go below zero */
	INV_ECONFLICT = -7,     /* idempotency key reused for another batch, or
	                           compare-and-set found another balance */
	INV_ERANGE = -8,        /* a balance would leave +-(2^53-1) */
	INV_EBACKEND = -9,      /* the storage backend failed (message says why) */
	INV_EBUSY = -10,        /* storage busy or locked: retrying may succeed */
	INV_EVERSION = -11,     /* unsupported struct or ops-table version */
	INV_EFORMAT = -12,      /* stored data is not a libzinv store, is corrupt,
	                           or has a newer schema */
	INV_EREADONLY = -13,    /* the store was opened read-only */
	INV_ETOOBIG = -14       /* a request exceeds a documented limit */
} inv_error_code;

/* The largest change and the largest absolute balance: 2^53 - 1, exact in
 * every JSON reader (JavaScript included). */
#define INV_QUANTITY_MAX INT64_C(9007199254740991)

/* A UUID as 16 raw bytes (RFC 4122 byte order). Frozen layout. */
typedef struct inv_uuid {
	uint8_t bytes[16];
} inv_uuid;

/* Length of the text form, without the terminating NUL. */
#define INV_UUID_STRLEN 36

/*
 * Detail about the last failed call on the calling thread.  Frozen layout.
 * `index` is the position of the failing change (or line, or request entry)
 * in the caller's array, or -1 when the failure is not about one element.
 * `field` names the offending argument or field ("quantity", "to", ...) or is
 * NULL.  The strings stay valid until the next libzinv call on this thread.
 */
typedef struct inv_error {
	int32_t code;
	int32_t reserved;
	int64_t index;
	const char *message;
	const char *field;
} inv_error;

/* Detail of the calling thread's last error; never NULL (code 0 when none). */
INV_EXTERN const inv_error *inv_error_last(void);

/* Forget the calling thread's last error. */
INV_EXTERN void inv_error_clear(void);

/* Static English text for an INV_E* code; never NULL. */
INV_EXTERN const char *inv_strerror(int code);

/* The library's version string at run time ("1.1.0"). */
INV_EXTERN const char *inv_version(void);

/*
 * Parse a UUID from `len` bytes of text (36 characters, either case).
 * Returns 0, or INV_EINVAL when the text is not a UUID.
 */
INV_EXTERN int inv_uuid_parse(inv_uuid *out, const char *text, size_t len);

/* Write the lowercase text form and a NUL into `out` (37 bytes). */
INV_EXTERN void inv_uuid_format(const inv_uuid *uuid, char out[37]);

/* memcmp-style ordering of two UUIDs (by bytes). */
INV_EXTERN int inv_uuid_compare(const inv_uuid *a, const inv_uuid *b);

/* Free an array the library returned (balances, UUID lists, ...). NULL is a no-op. */
INV_EXTERN void inv_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_COMMON_H */
