/*
 * zinv/tracking.h - which products count.
 *
 * Tracking is per product.  Stopping keeps balances but hides them from reads,
 * stops sales from decrementing them and rejects explicit moves with
 * INV_ENOTTRACKED; starting again brings the kept balances back.
 */
#ifndef ZINV_TRACKING_H
#define ZINV_TRACKING_H

#include "org.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Start tracking; already tracked is not an error (no event, no journal entry). */
INV_EXTERN int inv_tracking_start(inv_org *org, const inv_uuid *product);

/* Stop tracking; INV_ENOTTRACKED when the product is not tracked. */
INV_EXTERN int inv_tracking_stop(inv_org *org, const inv_uuid *product);

/* *out = 1 when tracked, else 0. */
INV_EXTERN int inv_tracking_get(int *out, inv_org *org, const inv_uuid *product);

/* The tracked products, sorted by UUID bytes; free *out with inv_free(). */
INV_EXTERN int inv_tracking_list(inv_uuid **out, size_t *count, inv_org *org);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_TRACKING_H */
