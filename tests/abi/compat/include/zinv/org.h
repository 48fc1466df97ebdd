/*
 * zinv/org.h - organizations, their locations, and variant handles.
 *
 * Every read and write is scoped to one organization.  Location and variant
 * handles belong to the organization handle that returned them and stay valid
 * until that handle is closed.
 */
#ifndef ZINV_ORG_H
#define ZINV_ORG_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct inv_org inv_org;
typedef struct inv_location inv_location;
typedef struct inv_variant inv_variant;

/* Location types.  Values are frozen. */
typedef enum inv_location_type {
	INV_LOCATION_STORE = 1,    /* holds balances */
	INV_LOCATION_SOLD = 2,     /* untracked sink and source */
	INV_LOCATION_BIN = 3,      /* untracked sink and source */
	INV_LOCATION_SUPPLIER = 4  /* infinite source and sink */
} inv_location_type;

/*
 * Open the organization `org_uuid`.  The first time an organization is used,
 * its four system locations (STORE, SOLD, BIN, SUPPLIER) are created with new
 * UUIDs and persisted; their UUIDs never change afterwards.  Opening the same
 * organization twice returns handles that share state; close each.
 */
INV_EXTERN int inv_org_open(inv_org **out, inv_store *store, const inv_uuid *org_uuid);

/* Release a handle from inv_org_open().  NULL is a no-op. */
INV_EXTERN void inv_org_close(inv_org *org);

/* The organization's UUID (owned by the handle). */
INV_EXTERN const inv_uuid *inv_org_uuid(const inv_org *org);

/* The organization's negative-stock policy; persisted. */
INV_EXTERN int inv_org_get_negative_policy(inv_negative_policy *out, inv_org *org);
INV_EXTERN int inv_org_set_negative_policy(inv_org *org, inv_negative_policy policy);

/* Number of locations, and the i-th one (NULL when out of range), in the
 * order STORE, SOLD, BIN, SUPPLIER. */
INV_EXTERN size_t inv_org_location_count(const inv_org *org);
INV_EXTERN const inv_location *inv_org_location_at(const inv_org *org, size_t i);

/* The default location of a type; INV_ENOTFOUND if the type is unknown. */
INV_EXTERN int inv_location_by_type(const inv_location **out, const inv_org *org,
                                    inv_location_type type);

/* The location with this UUID in this organization; INV_ENOTFOUND otherwise
 * (another organization's location included). */
INV_EXTERN int inv_location_by_uuid(const inv_location **out, const inv_org *org,
                                    const inv_uuid *uuid);

INV_EXTERN const inv_uuid *inv_location_uuid(const inv_location *loc);
INV_EXTERN inv_location_type inv_location_get_type(const inv_location *loc);
/* "STORE", "SOLD", "BIN" or "SUPPLIER". */
INV_EXTERN const char *inv_location_name(const inv_location *loc);
/* "System generated location". */
INV_EXTERN const char *inv_location_description(const inv_location *loc);
/* 1 for the organization's default STORE, else 0. */
INV_EXTERN int inv_location_is_default(const inv_location *loc);

/*
 * Resolve the variant (product, variant) to a handle, so that batches parse
 * no UUIDs and repeat no lookups.  A variant belongs to exactly one product,
 * the first it is seen with: INV_EMISMATCH if it is already known under
 * another product, in the store or to this process.  Resolving does not
 * store anything, so another process may bind the variant to another product
 * after it resolved here; the batch that uses the handle then fails with
 * INV_EMISMATCH and stores nothing.  The same pair returns the same handle.
 */
INV_EXTERN int inv_variant_get(const inv_variant **out, inv_org *org,
                               const inv_uuid *product, const inv_uuid *variant);

INV_EXTERN const inv_uuid *inv_variant_product_uuid(const inv_variant *variant);
INV_EXTERN const inv_uuid *inv_variant_uuid(const inv_variant *variant);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_ORG_H */
