/*
 * store.c - opening and closing a store; options. Closing frees the organizations
 * still open; the registry itself (open, share, forget) is org.c's, which never
 * calls back into this file.
 */
#include <stdlib.h>
#include <time.h>

#include <uuid/uuid.h>

#include "core_int.h"

int inv_store_options_init(inv_store_options *opts, uint32_t version)
{
	static const inv_store_options defaults = INV_STORE_OPTIONS_INIT;

	if (!opts)
		return inv__error(INV_EINVAL, -1, "opts", "options are NULL");
	if (version != INV_STORE_OPTIONS_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "store options version %u is not supported", version);
	*opts = defaults;
	return 0;
}

static int64_t system_clock(void *payload)
{
	struct timespec ts;

	(void)payload;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void libuuid_generate(inv_uuid *out, void *payload)
{
	(void)payload;
	uuid_generate_time(out->bytes);
}

/* The members the core calls without a NULL check. */
static int ops_complete(const inv_backend_ops *ops)
{
	return ops->close && ops->begin && ops->commit && ops->rollback &&
	       ops->org_get && ops->org_put && ops->location_scan && ops->location_put &&
	       ops->tracking_get && ops->tracking_put && ops->tracking_scan &&
	       ops->variant_get && ops->variant_put && ops->variant_scan &&
	       ops->low_stock_get && ops->low_stock_put && ops->low_stock_delete &&
	       ops->low_stock_scan && ops->journal_append && ops->journal_read &&
	       ops->journal_trim && ops->idempotency_get && ops->idempotency_put;
}

int inv_store_open(inv_store **out, const inv_backend_ops *ops, void *instance,
                   const inv_store_options *opts)
{
	inv_store *s;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	*out = NULL;
	if (!ops)
		return inv__error(INV_EINVAL, -1, "ops", "ops is NULL");
	if (ops->version < 1 || ops->version > INV_BACKEND_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "backend ops version %u is not supported (1..%d)",
		                  ops->version, INV_BACKEND_VERSION);
	if (!ops_complete(ops))
		return inv__error(INV_EINVAL, -1, "ops",
		                  "backend ops table lacks a mandatory member");
	if (ops->version >= 2 && !ops->sync_state_get)
		return inv__error(INV_EINVAL, -1, "sync_state_get",
		                  "backend ops version %u lacks sync_state_get", ops->version);
	if (ops->version >= 2 && !ops->sync_state_put)
		return inv__error(INV_EINVAL, -1, "sync_state_put",
		                  "backend ops version %u lacks sync_state_put", ops->version);
	if (opts && opts->version != INV_STORE_OPTIONS_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "store options version %u is not supported", opts->version);
	if (opts && opts->negative_policy != INV_NEGATIVE_ALLOW &&
	    opts->negative_policy != INV_NEGATIVE_DENY)
		return inv__error(INV_EINVAL, -1, "negative_policy",
		                  "unknown negative policy %d", (int)opts->negative_policy);

	s = calloc(1, sizeof(*s));
	if (!s)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	s->ops = ops;
	s->instance = instance;
	inv_store_options_init(&s->opts, INV_STORE_OPTIONS_VERSION);
	if (opts)
		s->opts = *opts;
	if (!s->opts.clock)
		s->opts.clock = system_clock;
	if (!s->opts.uuid_generate)
		s->opts.uuid_generate = libuuid_generate;
	pthread_mutex_init(&s->orgs_lock, NULL);
	pthread_mutex_init(&s->subs_lock, NULL);
	s->next_sub_id = 1;
	s->commit_release = ops->version >= 3 ? ops->commit_release : NULL;
	*out = s;
	return 0;
}

int inv__backend_has_sync_state(const inv_store *store)
{
	/* A version-1 table ends before the members, so they are not read. */
	return store->ops->version >= 2;
}

int inv_store_open_memory(inv_store **out, const inv_store_options *opts)
{
	const inv_backend_ops *ops;
	void *instance = NULL;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	*out = NULL;
	ops = inv_memory_backend_ops();
	rc = inv_memory_backend_new(&instance);
	if (rc)
		return inv__error_keep(rc, -1, "cannot create the memory backend");
	rc = inv_store_open(out, ops, instance, opts);
	if (rc)
		ops->close(instance);
	return rc;
}

static void free_org_node(inv__map_node *n)
{
	inv__org_free((inv_org *)n);
}

void inv_store_close(inv_store *store)
{
	if (!store)
		return;
	inv__map_dispose(&store->orgs, free_org_node);
	store->ops->close(store->instance);
	pthread_mutex_destroy(&store->orgs_lock);
	pthread_mutex_destroy(&store->subs_lock);
	free(store->subs);
	free(store);
}
