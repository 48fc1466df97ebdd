/*
 * journal.c - reading and trimming the journal.  The backend reads by
 * sequence; product and time filters are applied here, a chunk at a time,
 * so that a filtered read of a long journal stays within bounded memory
 * per backend call.
 */
#include <stdlib.h>

#include "core_int.h"

struct inv_journal {
	inv_journal_entry *entries;
	size_t count, cap;
};

static const inv_journal_query default_query = INV_JOURNAL_QUERY_INIT;

int inv_journal_query_init(inv_journal_query *query, uint32_t version)
{
	if (!query)
		return inv__error(INV_EINVAL, -1, "query", "query is NULL");
	if (version != INV_JOURNAL_QUERY_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "journal query version %u is not supported", version);
	*query = default_query;
	return 0;
}

int64_t inv_journal_entry_sequence(const inv_journal_entry *entry)
{
	return entry ? entry->rec.sequence : 0;
}

int64_t inv_journal_entry_time(const inv_journal_entry *entry)
{
	return entry ? entry->rec.time : 0;
}

const inv_uuid *inv_journal_entry_external_uuid(const inv_journal_entry *entry)
{
	return entry && entry->rec.has_external_uuid ? &entry->rec.external_uuid : NULL;
}

const char *inv_journal_entry_idempotency_key(const inv_journal_entry *entry)
{
	return entry ? entry->rec.idempotency_key : NULL;
}

const inv_uuid *inv_journal_entry_user_uuid(const inv_journal_entry *entry)
{
	return entry && entry->rec.has_user_uuid ? &entry->rec.user_uuid : NULL;
}

const inv_uuid *inv_journal_entry_client_uuid(const inv_journal_entry *entry)
{
	return entry && entry->rec.has_client_uuid ? &entry->rec.client_uuid : NULL;
}

size_t inv_journal_entry_record_count(const inv_journal_entry *entry)
{
	return entry ? entry->rec.record_count : 0;
}

const inv_journal_record *inv_journal_entry_records(const inv_journal_entry *entry)
{
	return entry ? entry->rec.records : NULL;
}

size_t inv_journal_count(const inv_journal *journal)
{
	return journal ? journal->count : 0;
}

const inv_journal_entry *inv_journal_at(const inv_journal *journal, size_t i)
{
	return journal && i < journal->count ? &journal->entries[i] : NULL;
}

void inv_journal_free(inv_journal *journal)
{
	size_t i;

	if (!journal)
		return;
	for (i = 0; i < journal->count; i++) {
		free((void *)journal->entries[i].rec.records);
		free((void *)journal->entries[i].rec.idempotency_key);
	}
	free(journal->entries);
	free(journal);
}

struct reader {
	const inv_journal_query *q;
	inv_journal *journal;
	int64_t last_seen;
	size_t seen;
	int full;
	int nomem;
};

static int matches(const inv_journal_query *q, const inv_journal_entry_record *rec)
{
	size_t i;

	if (q->time_from && rec->time < q->time_from)
		return 0;
	if (q->time_to && rec->time >= q->time_to)
		return 0;
	if (!q->has_product)
		return 1;
	for (i = 0; i < rec->record_count; i++)
		if (inv__uuid_eq(&rec->records[i].product, &q->product))
			return 1;
	return 0;
}

/* Copy the lent entry into journal-owned memory. */
static int copy_entry(const inv_journal_entry_record *rec, void *payload)
{
	struct reader *r = payload;
	inv_journal *j = r->journal;
	inv_journal_entry_record *e;
	inv_journal_record *records = NULL;
	char *key = NULL;

	r->seen++;
	r->last_seen = rec->sequence;
	if (!matches(r->q, rec))
		return 0;
	if (inv__grow(&j->entries, &j->cap, j->count + 1, sizeof(*j->entries)))
		goto nomem;
	if (rec->record_count) {
		records = malloc(rec->record_count * sizeof(*records));
		if (!records)
			goto nomem;
		memcpy(records, rec->records, rec->record_count * sizeof(*records));
	}
	if (rec->idempotency_key) {
		size_t len = strlen(rec->idempotency_key);

		key = malloc(len + 1);
		if (!key)
			goto nomem;
		memcpy(key, rec->idempotency_key, len + 1);
	}
	e = &j->entries[j->count++].rec;
	*e = *rec;
	e->records = records;
	e->idempotency_key = key;
	if (r->q->limit && j->count == r->q->limit) {
		r->full = 1;
		return 1;
	}
	return 0;
nomem:
	free(records);
	r->nomem = 1;
	return 1;
}

#define JOURNAL_CHUNK 256

int inv_journal_read(inv_journal **out, inv_org *org, const inv_journal_query *query)
{
	const inv_journal_query *q = query ? query : &default_query;
	struct reader r = { .q = q };
	int filtered = q->has_product || q->time_from || q->time_to;
	size_t chunk = filtered ? JOURNAL_CHUNK : q->limit;
	int64_t after = q->after_sequence;
	void *txn;
	int rc;

	if (!out || !org)
		return inv__error(INV_EINVAL, -1, !out ? "out" : "org", "argument is NULL");
	*out = NULL;
	if (q->version != INV_JOURNAL_QUERY_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "journal query version %u is not supported", q->version);
	if (q->after_sequence < 0)
		return inv__error(INV_EINVAL, -1, "after_sequence",
		                  "after_sequence is 0 or more");
	r.journal = calloc(1, sizeof(*r.journal));
	if (!r.journal)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		goto fail;
	do {
		r.seen = 0;
		rc = inv__ops(org)->journal_read(txn, &org->node.key, after, chunk, copy_entry, &r);
		if (r.nomem) {
			rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
			break;
		}
		if (rc && !r.full) {
			rc = inv__error_keep(rc, -1, "cannot read the journal");
			break;
		}
		rc = 0;
		after = r.last_seen;
	} while (filtered && !r.full && r.seen == chunk);
	inv__ops(org)->rollback(txn);
	if (rc)
		goto fail;
	*out = r.journal;
	return 0;
fail:
	inv_journal_free(r.journal);
	return rc;
}

int inv_journal_last_sequence(int64_t *out, inv_org *org)
{
	inv_org_record rec;
	int rc;

	if (!out || !org)
		return inv__error(INV_EINVAL, -1, !out ? "out" : "org", "argument is NULL");
	rc = inv__org_read(org, &rec);
	if (rc)
		return rc;
	*out = rec.last_sequence;
	return 0;
}

int inv_journal_trim(inv_org *org, int64_t up_to)
{
	const inv_backend_ops *ops;
	void *txn;
	int rc;

	if (!org)
		return inv__error(INV_EINVAL, -1, "org", "org is NULL");
	if (up_to < 0)
		return inv__error(INV_EINVAL, -1, "up_to", "up_to is 0 or more");
	ops = inv__ops(org);
	rc = inv__org_lock_write(org);
	if (rc)
		return rc;
	rc = inv__org_begin(org, 1, &txn);
	if (rc)
		goto out;
	rc = ops->journal_trim(txn, &org->node.key, up_to);
	if (rc) {
		ops->rollback(txn);
		rc = inv__error_keep(rc, -1, "cannot trim the journal");
		goto out;
	}
	rc = inv__org_commit(org, txn);
out:
	inv__org_unlock_write(org);
	return rc;
}
