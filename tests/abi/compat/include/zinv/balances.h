/*
 * zinv/balances.h - reading balances.
 *
 * Reads list tracked products only, sorted by (product, variant) UUID bytes.
 * SOLD, BIN and SUPPLIER hold no balances: reads of them return nothing.
 */
#ifndef ZINV_BALANCES_H
#define ZINV_BALANCES_H

#include "apply.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A balance query; a versioned struct. */
typedef struct inv_balance_query {
	uint32_t version;               /* INV_BALANCE_QUERY_VERSION */
	int32_t include_zero;           /* also list variants whose balance is 0 */
	const inv_location *location;   /* NULL: default STORE */
	const inv_uuid *products;       /* only these products; NULL: all tracked */
	size_t product_count;
	int32_t with_low_stock;         /* fill the low_stock_* members */
	int32_t has_after;              /* resume after (after_product, after_variant) */
	inv_uuid after_product;
	inv_uuid after_variant;
	size_t limit;                   /* at most this many; 0: no limit */
	/* members above are valid for version 1 */
} inv_balance_query;

#define INV_BALANCE_QUERY_VERSION 1
#define INV_BALANCE_QUERY_INIT \
	{ INV_BALANCE_QUERY_VERSION, 0, NULL, NULL, 0, 0, 0, {{0}}, {{0}}, 0 }

/* Fill *query with defaults for `version`; INV_EVERSION if unknown. */
INV_EXTERN int inv_balance_query_init(inv_balance_query *query, uint32_t version);

/*
 * Read balances.  With `query` NULL: the default STORE's non-zero balances of
 * all tracked products.  Free *out with inv_free() (*out may be NULL when
 * *count is 0).  *more is set to 1 when `limit` cut the list short; `more`
 * may be NULL.
 */
INV_EXTERN int inv_balances_read(inv_balance **out, size_t *count, int *more,
                                 inv_org *org, const inv_balance_query *query);

/* One variant's balance in `location` (NULL: default STORE), tracked or not;
 * 0 when it has never moved. */
INV_EXTERN int inv_balance_get(int64_t *out, inv_org *org, const inv_variant *variant,
                               const inv_location *location);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_BALANCES_H */
