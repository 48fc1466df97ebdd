/*
 * error_int.h - recording the per-thread error detail inside the library.
 */
#ifndef ZINV_ERROR_INT_H
#define ZINV_ERROR_INT_H

#include <zinv/common.h>

/*
 * Record an error for the calling thread and return `code`, so that callers
 * can write `return inv__error(INV_EINVAL, 3, "quantity", "...", ...)`.
 * `index` is -1 when the error is not about one element; `field` may be NULL.
 */
int inv__error(int code, int64_t index, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Like inv__error() but keeps a message a backend already recorded for
 * `code`, so that the backend's own words reach the caller. */
int inv__error_keep(int code, int64_t index, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set the index of the recorded error (the failing change). */
void inv__error_set_index(int64_t index);

#endif /* ZINV_ERROR_INT_H */
