/*
 * memory_int.h - what the core knows of the built-in memory backend beyond
 * its ops table: a write transaction begun on an organization the core has
 * looked up once, so that a batch hashes no organization UUID.
 */
#ifndef ZINV_MEMORY_INT_H
#define ZINV_MEMORY_INT_H

#include <zinv/backend.h>

/* 1 when `ops` is the built-in memory backend's own table (not a wrapper). */
int inv__memory_is(const inv_backend_ops *ops);

/* begin() of the memory backend.  `*org_cache` is the caller's per
 * organization slot, NULL at first: the backend's organization is kept
 * there (it lives until the instance closes) and used from then on. */
int inv__memory_begin(void *instance, void **org_cache, const inv_uuid *org, int write,
                      void **txn);

#endif /* ZINV_MEMORY_INT_H */
