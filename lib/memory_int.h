/*
 * memory_int.h - what the core knows of the built-in memory backend beyond
 * its ops table: a write transaction begun on an organization the core has
 * looked up once, so that a batch hashes no organization UUID, and puts of
 * variant records that go straight to where the record was last time.
 * Every other backend takes the same writes through the vtable.
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

/*
 * variant_put_many() of the memory backend, for the core's batches: each
 * record's hints[i] points at the caller's hint for it, the record's place
 * in the backend (0: none yet), which skips hashing and probing when still
 * right and is set to the record's place on return.  Any value is safe: a
 * wrong hint costs the ordinary lookup.
 */
int inv__memory_variant_put_hinted(void *txn, const inv_uuid *org, size_t count,
                                   const inv_variant_record *recs, uint32_t *const *hints);

#endif /* ZINV_MEMORY_INT_H */
