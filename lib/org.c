/*
 * org.c - organizations: opening (and first-use creation of the system
 * locations), locations, variant handles, negative-stock policy.
 */
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "memory_int.h"

static const char *const location_names[] = {
	[INV_LOCATION_STORE] = "STORE",
	[INV_LOCATION_SOLD] = "SOLD",
	[INV_LOCATION_BIN] = "BIN",
	[INV_LOCATION_SUPPLIER] = "SUPPLIER",
};

int inv__org_begin(inv_org *org, int write, void **txn)
{
	const inv_store *s = org->store;
	int rc;

	/* A backend that fails without inv_backend_error() must not lend its
	 * failure an older message. */
	inv_error_clear();
	if (org->memory_backend)
		rc = inv__memory_begin(s->instance, &org->backend_org, &org->node.key, write, txn);
	else
		rc = s->ops->begin(s->instance, &org->node.key, write, txn);
	if (rc)
		return inv__error_keep(rc, -1, "%s backend: cannot begin a transaction",
		                       s->ops->name ? s->ops->name : "storage");
	return 0;
}

int inv__org_commit(inv_org *org, void *txn)
{
	const inv_store *s = org->store;
	int rc = s->ops->commit(txn);

	if (rc)
		return inv__error_keep(rc, -1, "%s backend: commit failed",
		                       s->ops->name ? s->ops->name : "storage");
	return 0;
}

int inv__org_lock_write(inv_org *org)
{
	int rc;

	if (inv__events_in_callback()) {
		if (pthread_mutex_trylock(&org->write_lock) == 0)
			return 0;
		return inv__error(INV_EBUSY, -1, NULL,
		                  "an event callback cannot wait for a busy organization "
		                  "(its own always is); retry after the callback");
	}
	rc = pthread_mutex_lock(&org->write_lock);
	if (rc)
		return inv__error(INV_EBUSY, -1, NULL, "cannot lock the organization");
	return 0;
}

void inv__org_unlock_write(inv_org *org)
{
	pthread_mutex_unlock(&org->write_lock);
}

const inv_location *inv__org_location(const inv_org *org, const inv_uuid *uuid)
{
	size_t i;

	for (i = 0; i < INV__LOC_COUNT; i++)
		if (inv__uuid_eq(&org->locations[i].uuid, uuid))
			return &org->locations[i];
	return NULL;
}

/* ------------------------------------------------------- open and close */

static void set_location(inv_org *org, const inv_location_record *rec)
{
	inv_location *loc = &org->locations[rec->type - 1];

	loc->org = org;
	loc->uuid = rec->uuid;
	loc->type = rec->type;
	loc->is_default = rec->type == INV_LOCATION_STORE;
}

static int collect_location(const inv_location_record *rec, void *payload)
{
	inv_org *org = payload;

	if (rec->type < INV_LOCATION_STORE || rec->type > INV_LOCATION_SUPPLIER)
		return 0; /* a type this version does not know: not ours to use */
	/* Only the default STORE is used until several STOREs are supported. */
	if (rec->type == INV_LOCATION_STORE && !rec->is_default)
		return 0;
	set_location(org, rec);
	return 0;
}

static int load_locations(inv_org *org, void *txn)
{
	const inv_backend_ops *ops = inv__ops(org);
	int rc, i;

	rc = ops->location_scan(txn, &org->node.key, collect_location, org);
	if (rc)
		return inv__error_keep(rc, -1, "cannot read the locations");
	for (i = 0; i < INV__LOC_COUNT; i++)
		if (!org->locations[i].org)
			return inv__error(INV_EFORMAT, -1, NULL,
			                  "the organization lacks its %s location",
			                  location_names[i + 1]);
	return 0;
}

/* First use: the organization record and its four system locations, in one
 * write transaction so that a crash leaves either all or none. */
static int create_org(inv_org *org)
{
	const inv_store *s = org->store;
	inv_org_record orec = { .org = org->node.key, .last_sequence = 0,
	                        .negative_policy = s->opts.negative_policy };
	void *txn;
	int rc, t;

	rc = inv__org_begin(org, 1, &txn);
	if (rc)
		return rc;
	rc = s->ops->org_get(txn, &org->node.key, &orec);
	if (rc == 0) {
		/* Another process created it since our read. */
		rc = load_locations(org, txn);
		s->ops->rollback(txn);
		return rc;
	}
	if (rc != INV_ENOTFOUND)
		goto fail;
	orec = (inv_org_record){ .org = org->node.key, .last_sequence = 0,
	                         .negative_policy = s->opts.negative_policy };
	rc = s->ops->org_put(txn, &orec);
	if (rc)
		goto fail;
	for (t = INV_LOCATION_STORE; t <= INV_LOCATION_SUPPLIER; t++) {
		inv_location_record rec = { .type = t, .is_default = t == INV_LOCATION_STORE };

		inv__store_new_uuid(s, &rec.uuid);
		rc = s->ops->location_put(txn, &org->node.key, &rec);
		if (rc)
			goto fail;
		set_location(org, &rec);
	}
	return inv__org_commit(org, txn);
fail:
	s->ops->rollback(txn);
	return inv__error_keep(rc, -1, "cannot create the organization");
}

static int load_org(inv_org *org)
{
	const inv_store *s = org->store;
	inv_org_record orec;
	void *txn;
	int rc;

	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = s->ops->org_get(txn, &org->node.key, &orec);
	if (rc == 0)
		rc = load_locations(org, txn);
	else if (rc != INV_ENOTFOUND)
		rc = inv__error_keep(rc, -1, "cannot read the organization");
	s->ops->rollback(txn);
	if (rc == INV_ENOTFOUND)
		return create_org(org);
	return rc;
}

static void handles_free(inv__handles *h)
{
	for (size_t i = 0; i < h->nslabs; i++)
		free(h->slabs[i]);
	free(h->slabs);
	free(h->index);
	memset(h, 0, sizeof(*h));
}

void inv__org_free(inv_org *org)
{
	inv__scratch *sc = &org->scratch;

	handles_free(&org->variants);
	inv__map_dispose(&org->products, NULL);
	for (size_t i = 0; i < org->product_nslabs; i++)
		free(org->product_slabs[i]);
	free(org->product_slabs);
	pthread_mutex_destroy(&org->write_lock);
	for (size_t i = 0; i < INV__COMMIT_CVS; i++)
		pthread_cond_destroy(&org->commit_cv[i]);
	pthread_mutex_destroy(&org->commit_lock);
	pthread_mutex_destroy(&org->handles_lock);
	free(sc->slots);
	free(sc->keys);
	free(sc->recs);
	free(sc->found);
	free(sc->miss);
	free(sc->hints);
	free(sc->jrecs);
	free(sc->crecs);
	free(sc->skipped);
	free(sc->changes);
	free(org);
}

static inv_org *org_new(inv_store *store, const inv_uuid *uuid)
{
	inv_org *org = calloc(1, sizeof(*org));

	if (!org)
		return NULL;
	org->node.key = *uuid;
	org->store = store;
	org->memory_backend = inv__memory_is(store->ops);
	org->cache_epoch = 1;
	org->cache_sequence = -1;
	pthread_mutex_init(&org->write_lock, NULL);
	pthread_mutex_init(&org->commit_lock, NULL);
	for (size_t i = 0; i < INV__COMMIT_CVS; i++)
		pthread_cond_init(&org->commit_cv[i], NULL);
	pthread_mutex_init(&org->handles_lock, NULL);
	return org;
}

int inv_org_open(inv_org **out, inv_store *store, const inv_uuid *org_uuid)
{
	inv__map_node *n;
	inv_org *org;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	*out = NULL;
	if (!store)
		return inv__error(INV_EINVAL, -1, "store", "store is NULL");
	if (!org_uuid)
		return inv__error(INV_EINVAL, -1, "org", "organization UUID is NULL");

	/* Held across the first load so that two threads opening one new
	 * organization create its locations once. */
	pthread_mutex_lock(&store->orgs_lock);
	n = inv__map_find(&store->orgs, org_uuid);
	if (n) {
		org = (inv_org *)n;
		org->refs++;
		pthread_mutex_unlock(&store->orgs_lock);
		*out = org;
		return 0;
	}
	org = org_new(store, org_uuid);
	if (!org) {
		pthread_mutex_unlock(&store->orgs_lock);
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	rc = load_org(org);
	if (rc == 0)
		rc = inv__map_insert(&store->orgs, &org->node);
	if (rc) {
		pthread_mutex_unlock(&store->orgs_lock);
		inv__org_free(org);
		if (rc == INV_ENOMEM)
			return inv__error(rc, -1, NULL, "out of memory");
		return rc;
	}
	org->refs = 1;
	pthread_mutex_unlock(&store->orgs_lock);
	*out = org;
	return 0;
}

void inv_org_close(inv_org *org)
{
	inv_store *s;
	int last;

	if (!org)
		return;
	s = org->store;
	pthread_mutex_lock(&s->orgs_lock);
	last = --org->refs == 0;
	if (last)
		inv__map_remove(&s->orgs, &org->node);
	pthread_mutex_unlock(&s->orgs_lock);
	if (last)
		inv__org_free(org);
}

const inv_uuid *inv_org_uuid(const inv_org *org)
{
	return org ? &org->node.key : NULL;
}

int inv__org_read(inv_org *org, inv_org_record *out)
{
	void *txn;
	int rc;

	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = inv__ops(org)->org_get(txn, &org->node.key, out);
	inv__ops(org)->rollback(txn);
	if (rc)
		return inv__error_keep(rc, -1, "cannot read the organization");
	return 0;
}

/* --------------------------------------------------------------- policy */

int inv_org_get_negative_policy(inv_negative_policy *out, inv_org *org)
{
	inv_org_record rec;
	int rc;

	if (!out || !org)
		return inv__error(INV_EINVAL, -1, out ? "org" : "out", "argument is NULL");
	rc = inv__org_read(org, &rec);
	if (rc)
		return rc;
	*out = rec.negative_policy == INV_NEGATIVE_DENY ? INV_NEGATIVE_DENY : INV_NEGATIVE_ALLOW;
	return 0;
}

int inv_org_set_negative_policy(inv_org *org, inv_negative_policy policy)
{
	const inv_backend_ops *ops;
	inv_org_record rec;
	void *txn;
	int rc;

	if (!org)
		return inv__error(INV_EINVAL, -1, "org", "org is NULL");
	if (policy != INV_NEGATIVE_ALLOW && policy != INV_NEGATIVE_DENY)
		return inv__error(INV_EINVAL, -1, "policy", "unknown negative policy %d", (int)policy);
	ops = inv__ops(org);
	rc = inv__org_lock_write(org);
	if (rc)
		return rc;
	rc = inv__org_begin(org, 1, &txn);
	if (rc)
		goto out;
	rc = ops->org_get(txn, &org->node.key, &rec);
	if (rc == 0) {
		rec.negative_policy = policy;
		rc = ops->org_put(txn, &rec);
	}
	if (rc) {
		ops->rollback(txn);
		rc = inv__error_keep(rc, -1, "cannot store the negative policy");
		goto out;
	}
	rc = inv__org_commit(org, txn);
out:
	inv__org_unlock_write(org);
	return rc;
}

/* ------------------------------------------------------------ locations */

size_t inv_org_location_count(const inv_org *org)
{
	return org ? INV__LOC_COUNT : 0;
}

const inv_location *inv_org_location_at(const inv_org *org, size_t i)
{
	return org && i < INV__LOC_COUNT ? &org->locations[i] : NULL;
}

int inv_location_by_type(const inv_location **out, const inv_org *org, inv_location_type type)
{
	if (!out || !org)
		return inv__error(INV_EINVAL, -1, out ? "org" : "out", "argument is NULL");
	if (type < INV_LOCATION_STORE || type > INV_LOCATION_SUPPLIER)
		return inv__error(INV_ENOTFOUND, -1, "type", "unknown location type %d", (int)type);
	*out = &org->locations[type - 1];
	return 0;
}

int inv_location_by_uuid(const inv_location **out, const inv_org *org, const inv_uuid *uuid)
{
	const inv_location *loc;

	if (!out || !org || !uuid)
		return inv__error(INV_EINVAL, -1, !out ? "out" : !org ? "org" : "uuid",
		                  "argument is NULL");
	loc = inv__org_location(org, uuid);
	if (!loc)
		return inv__error(INV_ENOTFOUND, -1, "location",
		                  "no such location in this organization");
	*out = loc;
	return 0;
}

const inv_uuid *inv_location_uuid(const inv_location *loc)
{
	return loc ? &loc->uuid : NULL;
}

inv_location_type inv_location_get_type(const inv_location *loc)
{
	return loc ? (inv_location_type)loc->type : (inv_location_type)0;
}

const char *inv_location_name(const inv_location *loc)
{
	return loc ? location_names[loc->type] : NULL;
}

const char *inv_location_description(const inv_location *loc)
{
	return loc ? "System generated location" : NULL;
}

int inv_location_is_default(const inv_location *loc)
{
	return loc ? loc->is_default : 0;
}

/* ------------------------------------------------------ variant handles */

/* The caller holds handles_lock. */
static int intern_product(inv__product **out, inv_org *org, const inv_uuid *product)
{
	inv__product *p = (inv__product *)inv__map_find(&org->products, product);

	if (!p) {
		size_t n = org->product_count, slab = n >> INV__HANDLE_SLAB_SHIFT;

		if (slab == org->product_nslabs) {
			if (slab == org->product_slabcap) {
				size_t ncap = slab ? slab * 2 : 4;
				inv__product **ns = realloc(org->product_slabs, ncap * sizeof(*ns));

				if (!ns)
					return INV_ENOMEM;
				org->product_slabs = ns;
				org->product_slabcap = ncap;
			}
			org->product_slabs[slab] = malloc(INV__HANDLE_SLAB * sizeof(*p));
			if (!org->product_slabs[slab])
				return INV_ENOMEM;
			org->product_nslabs++;
		}
		p = &org->product_slabs[slab][n & (INV__HANDLE_SLAB - 1)];
		memset(p, 0, sizeof(*p));
		p->node.key = *product;
		if (inv__map_insert(&org->products, &p->node))
			return INV_ENOMEM; /* the slot stays free for the next try */
		org->product_count++;
	}
	*out = p;
	return 0;
}

int inv__org_product(inv__product **out, inv_org *org, const inv_uuid *product)
{
	int rc;

	pthread_mutex_lock(&org->handles_lock);
	rc = intern_product(out, org, product);
	pthread_mutex_unlock(&org->handles_lock);
	if (rc)
		return inv__error(rc, -1, NULL, "out of memory");
	return 0;
}

static int mismatch(const inv_uuid *owner)
{
	char text[37];

	inv_uuid_format(owner, text);
	return inv__error(INV_EMISMATCH, -1, "variant",
	                  "the variant belongs to product %s", text);
}

/* ------------------------------------------------------ handle table */

static inline inv_variant *handle_at(const inv__handles *h, size_t n)
{
	return &h->slabs[n >> INV__HANDLE_SLAB_SHIFT][n & (INV__HANDLE_SLAB - 1)];
}

inv_variant *inv__handles_find(const inv__handles *h, const inv_uuid *variant)
{
	size_t mask = h->cap - 1;

	if (!h->count)
		return NULL;
	for (size_t i = inv__uuid_hash(variant) & mask;; i = (i + 1) & mask) {
		uint32_t e = h->index[i];

		if (e == 0)
			return NULL;
		inv_variant *v = handle_at(h, e - 1);

		if (inv__uuid_eq(&v->uuid, variant))
			return v;
	}
}

static void handles_index_put(uint32_t *index, size_t mask, const inv_uuid *key, uint32_t e)
{
	size_t i = inv__uuid_hash(key) & mask;

	while (index[i])
		i = (i + 1) & mask;
	index[i] = e;
}

/* Room for one more handle: a slab with a free place and an index that
 * stays at most 3/4 full.  Changes nothing on failure. */
static int handles_reserve(inv__handles *h)
{
	if (h->count >= UINT32_MAX - 1)
		return INV_ENOMEM;
	if ((h->count + 1) * 4 > h->cap * 3) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		uint32_t *ni = calloc(ncap, sizeof(*ni));

		if (!ni)
			return INV_ENOMEM;
		for (size_t n = 0; n < h->count; n++)
			handles_index_put(ni, ncap - 1, &handle_at(h, n)->uuid, (uint32_t)n + 1);
		free(h->index);
		h->index = ni;
		h->cap = ncap;
	}
	if (h->count == h->nslabs * INV__HANDLE_SLAB) {
		if (h->nslabs == h->slabcap) {
			size_t ncap = h->slabcap ? h->slabcap * 2 : 4;
			inv_variant **ns = realloc(h->slabs, ncap * sizeof(*ns));

			if (!ns)
				return INV_ENOMEM;
			h->slabs = ns;
			h->slabcap = ncap;
		}
		/* Pages of a slab are touched only as handles fill it, so an
		 * organization with few variants pays address space, not memory. */
		inv_variant *slab = aligned_alloc(INV__HANDLE_ALIGN, INV__HANDLE_SLAB * sizeof(*slab));

		if (!slab)
			return INV_ENOMEM;
		h->slabs[h->nslabs++] = slab;
	}
	return 0;
}

void inv__org_handles_forget(inv_org *org, int slots)
{
	inv__handles *h = &org->variants;

	/* handles_lock: inv_variant_get() may be adding handles meanwhile. */
	pthread_mutex_lock(&org->handles_lock);
	for (size_t n = 0; n < h->count; n++) {
		inv_variant *v = handle_at(h, n);

		if (slots)
			v->gen = 0;
		else
			v->cache = 0;
	}
	pthread_mutex_unlock(&org->handles_lock);
}

/* A new handle for `variant` (reserved with handles_reserve()), zeroed but
 * for its UUID. */
static inv_variant *handles_add(inv__handles *h, const inv_uuid *variant)
{
	inv_variant *v = handle_at(h, h->count);

	memset(v, 0, sizeof(*v));
	v->uuid = *variant;
	h->count++;
	handles_index_put(h->index, h->cap - 1, variant, (uint32_t)h->count);
	return v;
}

/* Look the variant up in the handle map; the caller holds handles_lock.
 * 1 when found (with *out set or a mismatch recorded in *rc). */
static int find_handle(inv_org *org, const inv_uuid *product, const inv_uuid *variant,
                       const inv_variant **out, int *rc)
{
	inv_variant *v = inv__handles_find(&org->variants, variant);

	if (!v)
		return 0;
	if (!inv__uuid_eq(&v->product->node.key, product))
		*rc = mismatch(&v->product->node.key);
	else
		*out = v;
	return 1;
}

int inv_variant_get(const inv_variant **out, inv_org *org, const inv_uuid *product,
                    const inv_uuid *variant)
{
	inv_variant_record rec;
	inv__product *p;
	inv_variant *v;
	void *txn;
	int rc = 0;

	if (!out || !org || !product || !variant)
		return inv__error(INV_EINVAL, -1,
		                  !out ? "out" : !org ? "org" : !product ? "product" : "variant",
		                  "argument is NULL");
	*out = NULL;
	pthread_mutex_lock(&org->handles_lock);
	if (find_handle(org, product, variant, out, &rc)) {
		pthread_mutex_unlock(&org->handles_lock);
		return rc;
	}
	pthread_mutex_unlock(&org->handles_lock);

	/* Not seen in this process: the default STORE's record proves which
	 * product owns the variant. */
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = inv__ops(org)->variant_get(txn, &org->node.key, &inv__default_store(org)->uuid,
	                                variant, &rec);
	inv__ops(org)->rollback(txn);
	if (rc == 0 && !inv__uuid_eq(&rec.product, product))
		return mismatch(&rec.product);
	if (rc && rc != INV_ENOTFOUND)
		return inv__error_keep(rc, -1, "cannot read the variant");

	rc = 0;
	pthread_mutex_lock(&org->handles_lock);
	if (find_handle(org, product, variant, out, &rc)) {
		pthread_mutex_unlock(&org->handles_lock);
		return rc;
	}
	if (intern_product(&p, org, product) || handles_reserve(&org->variants)) {
		pthread_mutex_unlock(&org->handles_lock);
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	v = handles_add(&org->variants, variant);
	v->org = org;
	v->product = p;
	pthread_mutex_unlock(&org->handles_lock);
	*out = v;
	return 0;
}

const inv_uuid *inv_variant_product_uuid(const inv_variant *variant)
{
	return variant ? &variant->product->node.key : NULL;
}

const inv_uuid *inv_variant_uuid(const inv_variant *variant)
{
	return variant ? &variant->uuid : NULL;
}
