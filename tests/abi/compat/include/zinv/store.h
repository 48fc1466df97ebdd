/*
 * zinv/store.h - opening and closing a store.
 *
 * A store owns one storage backend instance, the event subscribers and the
 * configuration.  It is safe to use from several threads at once; batches on
 * one organization are serialized, so no update is ever lost.
 */
#ifndef ZINV_STORE_H
#define ZINV_STORE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct inv_store inv_store;

/* A backend's operations table; declared in <zinv/backend.h>. */
typedef struct inv_backend_ops inv_backend_ops;

/* Negative-stock policy of an organization. */
typedef enum inv_negative_policy {
	INV_NEGATIVE_ALLOW = 0, /* a till never refuses a sale (default) */
	INV_NEGATIVE_DENY = 1   /* a change taking STORE below zero fails the batch */
} inv_negative_policy;

/* Milliseconds since 1970-01-01T00:00:00Z. */
typedef int64_t (*inv_clock_fn)(void *payload);

/* Write a new UUID into *out. */
typedef void (*inv_uuid_fn)(inv_uuid *out, void *payload);

/*
 * Options for inv_store_open(); a versioned struct.  Initialize with
 * INV_STORE_OPTIONS_INIT or inv_store_options_init(), then set members.
 */
typedef struct inv_store_options {
	uint32_t version;        /* INV_STORE_OPTIONS_VERSION */
	inv_clock_fn clock;      /* NULL: the system clock */
	void *clock_payload;
	inv_uuid_fn uuid_generate; /* NULL: libuuid time-based UUIDs */
	void *uuid_payload;
	int32_t negative_policy; /* policy of organizations created by this store */
	int32_t reserved;
	/* members above are valid for version 1 */
} inv_store_options;

#define INV_STORE_OPTIONS_VERSION 1
#define INV_STORE_OPTIONS_INIT \
	{ INV_STORE_OPTIONS_VERSION, NULL, NULL, NULL, NULL, INV_NEGATIVE_ALLOW, 0 }

/* Fill *opts with defaults for `version`; INV_EVERSION if unknown. */
INV_EXTERN int inv_store_options_init(inv_store_options *opts, uint32_t version);

/* Open a store on a fresh built-in memory backend.  `opts` may be NULL. */
INV_EXTERN int inv_store_open_memory(inv_store **out, const inv_store_options *opts);

/*
 * Open a store on a backend instance.  On success the store owns `instance`
 * and calls ops->close on it from inv_store_close(); on failure the caller
 * still owns it.  INV_EVERSION when ops->version is not supported.
 */
INV_EXTERN int inv_store_open(inv_store **out, const inv_backend_ops *ops,
                              void *instance, const inv_store_options *opts);

/*
 * Close a store: closes every organization handle still open and the backend.
 * No other thread may use the store or its handles during or after the call.
 * NULL is a no-op.
 */
INV_EXTERN void inv_store_close(inv_store *store);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_STORE_H */
