/*
 * libFuzzer target: the sync object's reading of upstream answers.  Input:
 * up to four parts separated by NUL bytes, the answers to the locations
 * read, the push of one sale, the balances read and the low-stock read;
 * the first byte of the push part picks its status.  A fresh memory store
 * per run.  Whatever the answers, the calls return a code, the object stays
 * usable, and an answer the pull refuses changes no local balance.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zinv.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORG "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
#define PRODUCT "7a51c3d0-9f3b-11ee-b962-0242ac120002"
#define VARIANT "7a51c6a0-9f3b-11ee-b962-0242ac120002"

static const int statuses[] = { 200, 204, 400, 404, 409, 413, 429, 500, 0 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *part[4] = { "", "", "", "" };
	size_t len[4] = { 0, 0, 0, 0 }, n = 0, start = 0, i;
	inv_store *store = NULL;
	inv_org *org = NULL;
	inv_sync *sync = NULL;
	const inv_variant *v;
	const inv_location *shop, *sold;
	inv_uuid org_id, p, var;
	int64_t before, after, pending;
	int step, k = 0;

	for (i = 0; i <= size && n < 4; i++)
		if (i == size || data[i] == 0) {
			part[n] = (const char *)data + start;
			len[n++] = i - start;
			start = i + 1;
		}
	inv_uuid_parse(&org_id, ORG, 36);
	inv_uuid_parse(&p, PRODUCT, 36);
	inv_uuid_parse(&var, VARIANT, 36);
	if (inv_store_open_memory(&store, NULL) || inv_org_open(&org, store, &org_id) ||
	    inv_tracking_start(org, &p) || inv_variant_get(&v, org, &p, &var))
		abort();
	inv_location_by_type(&shop, org, INV_LOCATION_STORE);
	inv_location_by_type(&sold, org, INV_LOCATION_SOLD);
	{
		inv_change c = { v, shop, sold, 2 };
		if (inv_apply_changes(NULL, org, &c, 1, NULL))
			abort();
	}
	if (inv_sync_open(&sync, org, NULL))
		abort();
	while (k < 12 && (step = inv_sync_next(sync)) != INV_SYNC_IDLE) {
		const char *path;
		size_t which;
		int status = 200, rc;

		k++;
		if (step < 0)
			continue;
		if (step == INV_SYNC_WAIT)
			continue;
		path = inv_sync_request_path(sync);
		which = strstr(path, "/locations") && !strstr(path, "inventory") &&
		        !strstr(path, "low-stock") ? 0 :
		        strstr(path, "low-stock") ? 3 :
		        strstr(path, "inventory/locations") ? 2 : 1;
		if (which == 1 && len[1])
			status = statuses[(unsigned char)part[1][0] % 9];
		inv_balance_get(&before, org, v, NULL);
		rc = inv_sync_answer(sync, status, NULL, 0, part[which], len[which]);
		inv_balance_get(&after, org, v, NULL);
		if (rc < 0 && which >= 2 && before != after)
			abort();   /* a refused pull moved stock */
	}
	if (inv_sync_pending(&pending, sync) || pending < 0 || pending > 2)
		abort();
	inv_sync_close(sync);
	inv_org_close(org);
	inv_store_close(store);
	return 0;
}
