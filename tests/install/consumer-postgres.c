/*
 * consumer-postgres.c - the install test's program for libzinv-postgres: built
 * with `pkg-config --cflags --libs zinv-postgres` alone, it stores a batch in
 * the database named by CONNINFO, opens it again and reads the balance back
 * (run under tests/pg/with-cluster.sh).
 *
 *   consumer-postgres CONNINFO
 */
#include <stdio.h>
#include <string.h>

#include <zinv.h>
#include <zinv/postgres.h>

static int step(int rc, const char *what)
{
	if (rc != 0)
		fprintf(stderr, "install test (postgres): %s: %s\n", what,
		        inv_error_last()->message);
	return rc;
}

static int open_org(inv_store **store, inv_org **org, const char *conninfo,
                    const inv_uuid *id)
{
	if (step(inv_store_open_postgres(store, conninfo, NULL, NULL), "open"))
		return 1;
	return step(inv_org_open(org, *store, id), "org");
}

int main(int argc, char **argv)
{
	inv_uuid id = { { 1 } }, product = { { 2 } }, variant = { { 3 } };
	const inv_location *shop, *supplier;
	const inv_variant *v;
	inv_store *store;
	inv_org *org;
	inv_change ch;
	int64_t balance = 0;

	if (argc != 2)
		return 2;
	if (open_org(&store, &org, argv[1], &id) ||
	    step(inv_tracking_start(org, &product), "track") ||
	    step(inv_variant_get(&v, org, &product, &variant), "variant") ||
	    step(inv_location_by_type(&shop, org, INV_LOCATION_STORE), "store") ||
	    step(inv_location_by_type(&supplier, org, INV_LOCATION_SUPPLIER), "supplier"))
		return 1;
	ch.variant = v;
	ch.from = supplier;
	ch.to = shop;
	ch.quantity = 5;
	if (step(inv_apply_changes(NULL, org, &ch, 1, NULL), "apply"))
		return 1;
	inv_store_close(store);

	if (open_org(&store, &org, argv[1], &id) ||
	    step(inv_variant_get(&v, org, &product, &variant), "variant") ||
	    step(inv_balance_get(&balance, org, v, NULL), "balance"))
		return 1;
	inv_store_close(store);
	if (balance != 5) {
		fprintf(stderr, "install test (postgres): expected balance 5 after reopen, got %lld\n",
		        (long long)balance);
		return 1;
	}
	return 0;
}
