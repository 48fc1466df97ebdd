/*
 * zinv/lowstock.h - low-stock levels and alerts.
 *
 * Per (STORE location, product, variant): a level (set or unset) and an alert
 * flag.  Defaults are unset and false; setting both back to the defaults
 * deletes the entry.  A variant is low when its level is set and its balance
 * is below the level.  Entries may exist for products that are not tracked.
 */
#ifndef ZINV_LOWSTOCK_H
#define ZINV_LOWSTOCK_H

#include "org.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Frozen (48 bytes). */
typedef struct inv_low_stock {
	inv_uuid product;
	inv_uuid variant;
	int64_t level;       /* valid when has_level */
	int32_t has_level;
	int32_t alert;
} inv_low_stock;

/*
 * Set the entry of (location, product, variant).  `level` NULL unsets the
 * level; a set level is 0 ..= INV_QUANTITY_MAX.  INV_EINVAL (field
 * "location") when `location` is not a STORE.
 */
INV_EXTERN int inv_low_stock_set(inv_org *org, const inv_location *location,
                                 const inv_uuid *product, const inv_uuid *variant,
                                 const int64_t *level, int alert);

/* The entry, or the defaults (has_level 0, alert 0) when there is none. */
INV_EXTERN int inv_low_stock_get(inv_low_stock *out, inv_org *org,
                                 const inv_location *location,
                                 const inv_uuid *product, const inv_uuid *variant);

/* Delete the entry; deleting a missing entry is not an error. */
INV_EXTERN int inv_low_stock_delete(inv_org *org, const inv_location *location,
                                    const inv_uuid *product, const inv_uuid *variant);

/* Entries of a location (and of one product when `product` is not NULL),
 * sorted by (product, variant); free *out with inv_free(). */
INV_EXTERN int inv_low_stock_list(inv_low_stock **out, size_t *count, inv_org *org,
                                  const inv_location *location, const inv_uuid *product);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_LOWSTOCK_H */
