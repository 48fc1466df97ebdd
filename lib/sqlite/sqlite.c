/*
 * sqlite.c - libzinv-sqlite: the storage vtable on one SQLite database.
 *
 * Schema (version 6, PRAGMA user_version = 6, PRAGMA application_id =
 * 0x7A696E76 "zinv").  UUIDs are 16-byte BLOBs in RFC 4122 byte order.
 * Quantities, balances and times (ms since the epoch) are INTEGERs.
 *
 *   organizations   (org PK, base_sequence, negative_policy); the last
 *                   sequence is max(base_sequence, the journal's last)
 *   locations       (org, uuid) PK, type, is_default
 *   tracking        (org, product) PK, tracked
 *   variants        id INTEGER PK, (org, location, variant) UNIQUE, product,
 *                   balance, updated
 *                   + index variants_by_product (org, product, location)
 *   low_stock       (org, location, product, variant) PK, level (NULL: unset),
 *                   alert
 *   journal_orgs    num INTEGER PK, org UNIQUE: the number an organization's
 *                   journal entries are keyed under, given at its first entry
 *   journal_entries id INTEGER PK = (num << 40) + sequence, time,
 *                   external_uuid, user_uuid, client_uuid, idempotency_key
 *                   (all nullable), record_count, records (BLOB, layout below)
 *   idempotency_keys (org, key) UNIQUE, fingerprint, sequence, result
 *   sync_state      org PK, data (the opaque sync-state record, ops version 2)
 *
 * An entry's records are one BLOB: a 4-byte header, then record_count
 * fixed-width records.  Every integer is little-endian.
 *
 *   header  0 u16 layout version (1), 2 u16 record size (112)
 *   record  0 i32 kind, 4 i32 low, 8 product, 24 variant, 40 from,
 *           56 to, 72 location (16-byte UUIDs, all zero: nil),
 *           88 i64 quantity, 96 i64 before, 104 i64 after
 *
 * A batch of 1,000 changes is thus one row and one B-tree insert, not
 * 1,000 (schema version 1 kept a row per record in journal_records, which
 * made the journal most of a batch's cost).  The journal is only ever read
 * back whole entries at a time, so nothing is lost by packing.
 *
 * journal_entries has an integer key for the same reason as variants
 * below, and one more: every batch appends an entry, and appending to a
 * rowid table fills each leaf page and starts the next with only the new
 * row, whose parent holds integers.  Keyed by (org, sequence) WITHOUT
 * ROWID, the tree's inner pages held whole entries and every split left
 * a half-full leaf, so that a batch of one wrote about half a page more and
 * rebalanced a tree of entries every few batches.  Sequences and
 * organization numbers are thus limited to 2^40 - 1 and 2^23 - 1.
 *
 * Most tables are WITHOUT ROWID: their keys are the natural composite keys
 * the operations look up by, so the row lives in the key's B-tree and a
 * lookup is one descent.  idempotency_keys and sync_state keep a rowid
 * because their BLOBs may be hundreds of KiB (a sync state up to 16 MiB),
 * which WITHOUT ROWID tables handle badly.  variants has an INTEGER key
 * because a batch rewrites thousands of balances: SQLite updates a row of
 * a WITHOUT ROWID table as a search, a delete and an insert in a B-tree
 * keyed by three BLOBs, but a row of a rowid table in place, after one
 * descent by integer, and with no index to touch when only the balance
 * changes.  The write connection remembers each row's id (sq_ids), and
 * every update by id also matches the key, so an id remembered wrongly
 * writes nothing and the key is looked up instead.
 *
 * The file is in WAL mode: readers keep a snapshot while a writer commits,
 * and a commit is one append to the WAL.  A write transaction is BEGIN
 * IMMEDIATE, which takes the database's single write lock up front, so
 * batches of any organization never interleave, across processes too, and
 * a lock that cannot be had within the busy timeout is INV_EBUSY instead of
 * a deadlock discovered halfway.
 *
 * Threads sharing an instance: read transactions run on connections of
 * their own, write transactions share one connection and are grouped so
 * that batches arriving while a commit is in progress share the next
 * transaction and its fsync (see sq_store below).
 *
 * Opening never writes to a file it refuses: the file is classified with
 * reads only (empty, ours at a known version, ours but newer, foreign,
 * garbage), and only an empty file or one of ours is given the schema,
 * migrated, or switched to WAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <zinv/sqlite.h>

#define SQ_APPLICATION_ID 0x7A696E76 /* "zinv" */

struct sq_migration {
	const char *before;                 /* SQL run first */
	int (*convert)(sqlite3 *db);        /* then this, when not NULL */
	const char *after;                  /* then this SQL, when not NULL */
};

static int migrate_journal_records_to_blobs(sqlite3 *db);
static int migrate_journal_check_ids(sqlite3 *db);

/* Migration steps: steps[i] takes a database from user_version i to i + 1.
 * Version 1 is the first schema, applied to an empty file.  Append a step
 * for each new version; never edit a released one. */
static const struct sq_migration migration_steps[] = {
	/* 0 -> 1 */
	{
	"CREATE TABLE organizations ("
	"  org BLOB NOT NULL PRIMARY KEY,"
	"  last_sequence INTEGER NOT NULL,"
	"  negative_policy INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE locations ("
	"  org BLOB NOT NULL,"
	"  uuid BLOB NOT NULL,"
	"  type INTEGER NOT NULL,"
	"  is_default INTEGER NOT NULL,"
	"  PRIMARY KEY (org, uuid)"
	") WITHOUT ROWID;"
	"CREATE TABLE tracking ("
	"  org BLOB NOT NULL,"
	"  product BLOB NOT NULL,"
	"  tracked INTEGER NOT NULL,"
	"  PRIMARY KEY (org, product)"
	") WITHOUT ROWID;"
	"CREATE TABLE variants ("
	"  org BLOB NOT NULL,"
	"  location BLOB NOT NULL,"
	"  variant BLOB NOT NULL,"
	"  product BLOB NOT NULL,"
	"  balance INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  PRIMARY KEY (org, location, variant)"
	") WITHOUT ROWID;"
	"CREATE INDEX variants_by_product ON variants (org, product, location);"
	"CREATE TABLE low_stock ("
	"  org BLOB NOT NULL,"
	"  location BLOB NOT NULL,"
	"  product BLOB NOT NULL,"
	"  variant BLOB NOT NULL,"
	"  level INTEGER,"
	"  alert INTEGER NOT NULL,"
	"  PRIMARY KEY (org, location, product, variant)"
	") WITHOUT ROWID;"
	"CREATE TABLE journal_entries ("
	"  org BLOB NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  time INTEGER NOT NULL,"
	"  external_uuid BLOB,"
	"  user_uuid BLOB,"
	"  client_uuid BLOB,"
	"  idempotency_key TEXT,"
	"  record_count INTEGER NOT NULL,"
	"  PRIMARY KEY (org, sequence)"
	") WITHOUT ROWID;"
	"CREATE TABLE journal_records ("
	"  org BLOB NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  low INTEGER NOT NULL,"
	"  product BLOB,"
	"  variant BLOB,"
	"  from_location BLOB,"
	"  to_location BLOB,"
	"  location BLOB,"
	"  quantity INTEGER NOT NULL,"
	"  before_balance INTEGER NOT NULL,"
	"  after_balance INTEGER NOT NULL,"
	"  PRIMARY KEY (org, sequence, idx)"
	") WITHOUT ROWID;"
	"CREATE TABLE idempotency_keys ("
	"  org BLOB NOT NULL,"
	"  key TEXT NOT NULL,"
	"  fingerprint BLOB NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  result BLOB NOT NULL,"
	"  UNIQUE (org, key)"
	");",
	NULL, NULL },
	/* 1 -> 2: one BLOB of records per journal entry instead of a row per
	 * record; the entries table is rebuilt so that the column is NOT NULL.
	 * The empty value is the header of a zero-record BLOB. */
	{
	"CREATE TABLE journal_entries_v2 ("
	"  org BLOB NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  time INTEGER NOT NULL,"
	"  external_uuid BLOB,"
	"  user_uuid BLOB,"
	"  client_uuid BLOB,"
	"  idempotency_key TEXT,"
	"  record_count INTEGER NOT NULL,"
	"  records BLOB NOT NULL,"
	"  PRIMARY KEY (org, sequence)"
	") WITHOUT ROWID;"
	"INSERT INTO journal_entries_v2 SELECT org, sequence, time, external_uuid,"
	"  user_uuid, client_uuid, idempotency_key, record_count, x'01007000'"
	"  FROM journal_entries;",
	migrate_journal_records_to_blobs,
	"DROP TABLE journal_records;"
	"DROP TABLE journal_entries;"
	"ALTER TABLE journal_entries_v2 RENAME TO journal_entries;" },
	/* 2 -> 3: an organization's last sequence is its journal's last entry;
	 * the row keeps only what the journal cannot say (the sequence trimmed
	 * entries reached, or one set without an entry), so that a batch does
	 * not rewrite it.  A version 2 value is already at least the journal's
	 * last sequence, so the column is renamed and kept as it is. */
	{
	"ALTER TABLE organizations RENAME COLUMN last_sequence TO base_sequence;",
	NULL, NULL },
	/* 3 -> 4: the organization's sync state (ops version 2); with a rowid,
	 * like idempotency_keys, because the record may be megabytes. */
	{
	"CREATE TABLE sync_state ("
	"  org BLOB PRIMARY KEY,"
	"  data BLOB NOT NULL"
	");",
	NULL, NULL },
	/* 4 -> 5: variants gets an integer key, so that a balance is updated
	 * in place after one descent (see the top of the file); the natural
	 * key stays unique.  Ids follow the old key order. */
	{
	"DROP INDEX variants_by_product;"
	"ALTER TABLE variants RENAME TO variants_v4;"
	"CREATE TABLE variants ("
	"  id INTEGER PRIMARY KEY,"
	"  org BLOB NOT NULL,"
	"  location BLOB NOT NULL,"
	"  variant BLOB NOT NULL,"
	"  product BLOB NOT NULL,"
	"  balance INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  UNIQUE (org, location, variant)"
	");"
	"INSERT INTO variants (org, location, variant, product, balance, updated)"
	"  SELECT org, location, variant, product, balance, updated FROM variants_v4"
	"  ORDER BY org, location, variant;"
	"DROP TABLE variants_v4;"
	"CREATE INDEX variants_by_product ON variants (org, product, location);",
	NULL, NULL },
	/* 5 -> 6: journal entries keyed by an integer, (the organization's
	 * number << 40) + sequence, so that an append goes to the end of a
	 * rowid table (see the top of the file).  Numbers follow the old key
	 * order; a sequence outside 0 .. 2^40 - 1 refuses the file. */
	{
	"CREATE TABLE journal_orgs ("
	"  num INTEGER PRIMARY KEY,"
	"  org BLOB NOT NULL UNIQUE"
	");"
	"INSERT INTO journal_orgs (org) SELECT DISTINCT org FROM journal_entries ORDER BY org;"
	"CREATE TABLE journal_entries_v6 ("
	"  id INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL,"
	"  external_uuid BLOB,"
	"  user_uuid BLOB,"
	"  client_uuid BLOB,"
	"  idempotency_key TEXT,"
	"  record_count INTEGER NOT NULL,"
	"  records BLOB NOT NULL"
	");",
	migrate_journal_check_ids,
	"INSERT INTO journal_entries_v6 SELECT (j.num << 40) + e.sequence, e.time,"
	"  e.external_uuid, e.user_uuid, e.client_uuid, e.idempotency_key, e.record_count,"
	"  e.records FROM journal_entries e JOIN journal_orgs j ON j.org = e.org ORDER BY 1;"
	"DROP TABLE journal_entries;"
	"ALTER TABLE journal_entries_v6 RENAME TO journal_entries;" },
};

#define SQ_SCHEMA_VERSION ((int)(sizeof(migration_steps) / sizeof(migration_steps[0])))

/* A journal entry's id: its organization's number in journal_orgs, then
 * JOURNAL_SEQ_BITS bits of sequence (the 40 of step 5 -> 6). */
enum { JOURNAL_SEQ_BITS = 40 };
#define JOURNAL_SEQ_MAX ((INT64_C(1) << JOURNAL_SEQ_BITS) - 1)
#define JOURNAL_ORG_MAX ((INT64_C(1) << (63 - JOURNAL_SEQ_BITS)) - 1)

/* Every statement the operations run, prepared once at open. */
enum sq_stmt_id {
	ST_BEGIN_READ,
	ST_BEGIN_WRITE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_ORG_GET,
	ST_ORG_PUT,
	ST_ORG_KEEP_TRIMMED,
	ST_JOURNAL_ORG_GET,
	ST_JOURNAL_ORG_PUT,
	ST_LOCATION_SCAN,
	ST_LOCATION_PUT,
	ST_TRACKING_GET,
	ST_TRACKING_PUT,
	ST_TRACKING_SCAN,
	ST_VARIANT_GET,
	ST_VARIANT_ID,
	ST_VARIANT_UPDATE,
	ST_VARIANT_PUT,
	ST_VARIANT_SCAN_ALL,
	ST_VARIANT_SCAN_LOCATION,
	ST_VARIANT_SCAN_PRODUCT,
	ST_VARIANT_SCAN_BOTH,
	ST_LOW_STOCK_GET,
	ST_LOW_STOCK_ANY,
	ST_LOW_STOCK_PUT,
	ST_LOW_STOCK_DELETE,
	ST_LOW_STOCK_SCAN_LOCATION,
	ST_LOW_STOCK_SCAN_PRODUCT,
	ST_ENTRY_LAST,
	ST_ENTRY_INSERT,
	ST_ENTRY_READ,
	ST_ENTRY_TRIM,
	ST_IDEMPOTENCY_GET,
	ST_IDEMPOTENCY_PUT,
	ST_SYNC_STATE_GET,
	ST_SYNC_STATE_PUT,
	ST_COUNT
};

#define VARIANT_COLUMNS "location, variant, product, balance, updated"
#define LOW_STOCK_COLUMNS "location, product, variant, level, alert"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN_READ] = "BEGIN",
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT batch",
	[ST_RELEASE] = "RELEASE batch",
	[ST_ROLLBACK_TO] = "ROLLBACK TO batch",
	[ST_ORG_GET] =
		"SELECT base_sequence, negative_policy FROM organizations WHERE org = ?1",
	[ST_ORG_PUT] =
		"INSERT INTO organizations (org, base_sequence, negative_policy) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (org) DO UPDATE SET base_sequence = excluded.base_sequence,"
		" negative_policy = excluded.negative_policy",
	[ST_ORG_KEEP_TRIMMED] =
		"UPDATE organizations SET base_sequence = max(base_sequence, ?2) WHERE org = ?1",
	[ST_JOURNAL_ORG_GET] =
		"SELECT num FROM journal_orgs WHERE org = ?1",
	[ST_JOURNAL_ORG_PUT] =
		"INSERT INTO journal_orgs (org) VALUES (?1)",
	[ST_LOCATION_SCAN] =
		"SELECT uuid, type, is_default FROM locations WHERE org = ?1",
	[ST_LOCATION_PUT] =
		"INSERT INTO locations (org, uuid, type, is_default) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (org, uuid) DO UPDATE SET type = excluded.type,"
		" is_default = excluded.is_default",
	[ST_TRACKING_GET] =
		"SELECT tracked FROM tracking WHERE org = ?1 AND product = ?2",
	[ST_TRACKING_PUT] =
		"INSERT INTO tracking (org, product, tracked) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (org, product) DO UPDATE SET tracked = excluded.tracked",
	[ST_TRACKING_SCAN] =
		"SELECT product, tracked FROM tracking WHERE org = ?1",
	[ST_VARIANT_GET] =
		"SELECT product, balance, updated, id FROM variants"
		" WHERE org = ?1 AND location = ?2 AND variant = ?3",
	[ST_VARIANT_ID] =
		"SELECT id FROM variants WHERE org = ?1 AND location = ?2 AND variant = ?3",
	[ST_VARIANT_UPDATE] =
		"UPDATE variants SET balance = ?5, updated = ?6"
		" WHERE id = ?7 AND org = ?1 AND location = ?2 AND variant = ?3 AND product = ?4",
	[ST_VARIANT_PUT] =
		"INSERT INTO variants (org, " VARIANT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (org, location, variant) DO UPDATE SET product = excluded.product,"
		" balance = excluded.balance, updated = excluded.updated",
	[ST_VARIANT_SCAN_ALL] =
		"SELECT " VARIANT_COLUMNS " FROM variants WHERE org = ?1",
	[ST_VARIANT_SCAN_LOCATION] =
		"SELECT " VARIANT_COLUMNS " FROM variants WHERE org = ?1 AND location = ?2",
	[ST_VARIANT_SCAN_PRODUCT] =
		"SELECT " VARIANT_COLUMNS " FROM variants WHERE org = ?1 AND product = ?3",
	[ST_VARIANT_SCAN_BOTH] =
		"SELECT " VARIANT_COLUMNS " FROM variants"
		" WHERE org = ?1 AND location = ?2 AND product = ?3",
	[ST_LOW_STOCK_GET] =
		"SELECT " LOW_STOCK_COLUMNS " FROM low_stock"
		" WHERE org = ?1 AND location = ?2 AND product = ?3 AND variant = ?4",
	[ST_LOW_STOCK_ANY] =
		"SELECT 1 FROM low_stock WHERE org = ?1 AND location = ?2 LIMIT 1",
	[ST_LOW_STOCK_PUT] =
		"INSERT INTO low_stock (org, " LOW_STOCK_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (org, location, product, variant) DO UPDATE SET"
		" level = excluded.level, alert = excluded.alert",
	[ST_LOW_STOCK_DELETE] =
		"DELETE FROM low_stock"
		" WHERE org = ?1 AND location = ?2 AND product = ?3 AND variant = ?4",
	[ST_LOW_STOCK_SCAN_LOCATION] =
		"SELECT " LOW_STOCK_COLUMNS " FROM low_stock WHERE org = ?1 AND location = ?2",
	[ST_LOW_STOCK_SCAN_PRODUCT] =
		"SELECT " LOW_STOCK_COLUMNS " FROM low_stock"
		" WHERE org = ?1 AND location = ?2 AND product = ?3",
	[ST_ENTRY_LAST] =
		"SELECT id FROM journal_entries WHERE id BETWEEN ?1 AND ?2 ORDER BY id DESC LIMIT 1",
	[ST_ENTRY_INSERT] =
		"INSERT INTO journal_entries (id, time, external_uuid, user_uuid, client_uuid,"
		" idempotency_key, record_count, records) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_ENTRY_READ] =
		"SELECT id, time, external_uuid, user_uuid, client_uuid, idempotency_key,"
		" record_count, records FROM journal_entries WHERE id > ?1 AND id <= ?2"
		" ORDER BY id LIMIT ?3",
	[ST_ENTRY_TRIM] =
		"DELETE FROM journal_entries WHERE id BETWEEN ?1 AND ?2",
	[ST_IDEMPOTENCY_GET] =
		"SELECT fingerprint, sequence, result FROM idempotency_keys"
		" WHERE org = ?1 AND key = ?2",
	[ST_IDEMPOTENCY_PUT] =
		"INSERT INTO idempotency_keys (org, key, fingerprint, sequence, result)"
		" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (org, key) DO UPDATE SET"
		" fingerprint = excluded.fingerprint, sequence = excluded.sequence,"
		" result = excluded.result",
	[ST_SYNC_STATE_GET] =
		"SELECT data FROM sync_state WHERE org = ?1",
	[ST_SYNC_STATE_PUT] =
		"INSERT INTO sync_state (org, data) VALUES (?1, ?2)"
		" ON CONFLICT (org) DO UPDATE SET data = excluded.data",
};

struct sq_store;

/* A variant row's id, remembered under a 64-bit hash of its key (tag 0:
 * empty).  Four slots to a bucket, one cache line. */
typedef struct sq_id_slot {
	uint64_t tag;
	int64_t id;
} sq_id_slot;

/*
 * One SQLite connection and its prepared statements; also the transaction
 * handle the operations receive.  A connection has one transaction at a
 * time and is used by one thread at a time: the store hands it out.
 */
typedef struct sq_conn {
	sqlite3 *db;
	struct sq_store *store;
	struct sq_conn *next;       /* in the store's list of idle readers */
	struct sq_conn *all;        /* in the store's list of every reader */
	int read_only;
	int in_txn;
	int txn_write;
	/* Whether (ls_org, ls_location) has any low-stock entry, -1 when not
	 * known; kept like org_seen below.  A batch looks up the level of
	 * every variant it moved, and most locations have few levels set. */
	int ls_any;
	inv_uuid ls_org;
	inv_uuid ls_location;
	/* org_put's last sequence, not written because the batch's journal
	 * entry is about to say it (org_pending: for org_pending_org) */
	int org_pending;
	inv_uuid org_pending_org;
	int64_t org_pending_seq;
	int32_t org_pending_policy;
	/* The organization row org_get read (org_seen: for org_seen_org), so
	 * that org_put and journal_append do not read it again.  org_seen_seq
	 * is max(base_sequence, the journal's last), so at least the journal's
	 * last sequence.  On `w`, both it and ls_any outlive the batch while
	 * `kept` says the database is still as the batches since they were
	 * read left it: set when a batch ends well, cleared when one is undone
	 * or a commit fails, and checked against the file's data version
	 * (kept_dv, read after each commit) when a transaction begins, since
	 * another process may have committed in between. */
	int org_seen;
	inv_uuid org_seen_org;
	int64_t org_seen_seq;
	int32_t org_seen_policy;
	int kept;
	unsigned kept_dv;
	/* The number in journal_orgs of jn_org (0: it has none), while
	 * jn_known; kept like org_seen. */
	int jn_known;
	inv_uuid jn_org;
	int64_t jn_num;
	/* the batch on `w` opened the group's transaction: it has no
	 * savepoint, and undoing it is rolling the transaction back */
	int opened_txn;
	/* What ST_VARIANT_UPDATE's ?1 (org) and ?2 (location) are bound to,
	 * while upd_bound: a copy of our own, so that the bindings stay valid
	 * between batches and a batch, which keeps to one organization and
	 * mostly one location, binds only what changes. */
	int upd_bound;
	inv_uuid upd_org;
	inv_uuid upd_location;
	/* journal_append's packed records, kept to be reused by the next */
	unsigned char *pack;
	size_t pack_cap;
	/* the write connection's remembered variant ids (sq_ids) */
	sq_id_slot *ids;
	size_t ids_slots;           /* a power of two, 0 before the first */
	size_t ids_used;
	sqlite3_stmt *stmt[ST_COUNT];
} sq_conn;

/*
 * A caller of commit() whose batch is in the group's transaction, waiting
 * for its answer: the group's outcome and, with deferred fsync, the fsync
 * that makes the group durable.  It lives on that caller's stack and
 * sleeps on `sem` once: whoever answers it fills in `err` and `msg`,
 * unlinks it and posts `sem`, after which it is never touched again.
 * The one other post is `turn`: the caller is to run the next fsync
 * (sync_next).  `turn` is set under `mu` before its post, and only
 * while the waiter is queued with `turn` clear, so the waiter may read it
 * after sem_wait() without `mu`.
 */
typedef struct sq_waiter {
	struct sq_waiter *next;
	sem_t sem;
	int err;
	int turn;
	int queued;                 /* in the store's durability queue */
	uint64_t gen;               /* the commit whose fsync it waits for */
	char msg[320];
} sq_waiter;

/*
 * The instance.  Writes go through one connection, `w`; reads take an idle
 * connection of their own (WAL gives each a snapshot), opened on demand, so
 * that a read never waits for a writer or another reader.  A private
 * ":memory:" database has one connection only, and reads take `w` too.
 *
 * Group commit: the batches (write transactions) of different threads
 * share one SQLite transaction, each inside its own savepoint, run one
 * after another on `w`.  A batch that ends well releases its savepoint and
 * joins the group; then, if another thread is waiting to write, it hands
 * `w` over and waits for the group's outcome; the batch that finds nobody
 * waiting commits the group (one fsync) and answers everyone.  A failing
 * batch rolls back to its savepoint alone.  Across processes nothing
 * changes: the group's BEGIN IMMEDIATE holds the file's write lock.
 *
 * Deferred fsync (sync FULL on a file): `w` commits with PRAGMA synchronous
 * NORMAL, which appends the group to the WAL without an fsync, frees `w`
 * for the next group at once, and then waits for an fdatasync() of the WAL
 * that starts after its commit.  One thread syncs at a time, for every
 * commit before it, so groups that commit during an fsync share the next.
 * That is what synchronous FULL does (NORMAL plus an fsync of the WAL at
 * each commit), with the fsync moved out of the write lock: the WAL is
 * appended in commit order and recovery keeps its valid prefix, so a commit
 * is durable once a later fsync is, and nobody is answered before.  Readers
 * may see a commit before its fsync; a power loss in that window loses it
 * with every commit after it, and none of their callers was answered.
 * An fsync that fails leaves those commits in doubt: the instance refuses
 * every write after it.
 */
typedef struct sq_store {
	sq_conn *w;
	char *path;                 /* what `w` was opened with, for readers */
	inv_sqlite_options opts;
	int read_only;
	int shared_reads;           /* readers have their own connections */
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* `w` is free: one writer may take it (all
	                               waiters of a ":memory:" database) */
	pthread_cond_t company_cv;  /* a writer arrived (group_wait_us) */
	int busy;                   /* a thread is using `w` */
	int waiting;                /* threads waiting in begin() to write */
	int txn_open;               /* `w` is inside the group's transaction */
	int members;                /* released batches in the open group */
	sq_waiter *group;           /* their callers, waiting for the outcome, */
	sq_waiter **group_tail;     /* in the order they joined */
	/* deferred fsync (above): commits are numbered, `synced` is the last
	 * one an fsync made durable; sync_err poisons the instance */
	int defer_sync;
	char *wal_path;
	int wal_fd;                 /* -1 until the first fsync */
	uint64_t committed, synced;
	int syncing;
	int sync_err;
	/* callers of committed groups waiting for an fsync, oldest first */
	sq_waiter *durable, **durable_tail;
	sq_conn *idle;              /* idle reader connections */
	sq_conn *readers;           /* ... and every reader, to close them */
	int reader_count;
} sq_store;

/* ------------------------------------------------------------ errors */

static int code_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return INV_EBUSY;
	case SQLITE_NOMEM:
		return INV_ENOMEM;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return INV_EREADONLY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return INV_EFORMAT;
	case SQLITE_TOOBIG:
		return INV_ETOOBIG;
	default:
		return INV_EBACKEND;
	}
}

/* Words for the failures an operator must act on; SQLite's own are vaguer. */
static const char *describe(int rc)
{
	switch (rc) {
	case SQLITE_FULL:
		return "the disk is full, or a file size limit was reached";
	case SQLITE_IOERR_WRITE:
		return "cannot write the file (disk full, file size limit or I/O error)";
	case SQLITE_IOERR_FSYNC:
	case SQLITE_IOERR_DIR_FSYNC:
		return "cannot flush the file to disk";
	case SQLITE_IOERR_READ:
	case SQLITE_IOERR_SHORT_READ:
		return "cannot read the file";
	case SQLITE_IOERR_TRUNCATE:
		return "cannot truncate the file";
	case SQLITE_READONLY_CANTINIT:
	case SQLITE_READONLY_DIRECTORY:
		return "cannot create the -wal or -shm file beside the database "
		       "(is the directory writable?)";
	case SQLITE_READONLY:
		return "the database file is not writable";
	default:
		return NULL;
	}
}

/* SQLite reports the errno of the moment it notices, which can be stale;
 * only reasons that fit a failed open or write are worth repeating. */
static int plausible_errno(int err)
{
	switch (err) {
	case ENOSPC:
	case EFBIG:
	case EDQUOT:
	case EIO:
	case EACCES:
	case EROFS:
	case EPERM:
	case ENOENT:
		return 1;
	default:
		return 0;
	}
}

/*
 * Record a SQLite failure as the caller's error detail.  Disk and I/O errors
 * carry the system's reason (ENOSPC, EFBIG, EIO) when SQLite has it, which
 * is what an operator needs to act on.
 */
static int sq_fail(sqlite3 *db, int rc, const char *what)
{
	char msg[480];
	char sys[128] = "";
	const char *detail = describe(rc);
	int code = code_of(rc);
	int err = db ? sqlite3_system_errno(db) : 0;

	if (!detail)
		detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	if (((rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR ||
	     (rc & 0xff) == SQLITE_CANTOPEN) && plausible_errno(err)) {
		char buf[96];

		if (strerror_r(err, buf, sizeof(buf)) != 0)
			snprintf(buf, sizeof(buf), "errno %d", err);
		snprintf(sys, sizeof(sys), ": %s", buf);
	}
	snprintf(msg, sizeof(msg), "sqlite: %s: %s%s%s", what, detail, sys,
	         code == INV_EBUSY ? "; retry" : "");
	return inv_backend_error(code, msg);
}

static int sq_error(int code, const char *message)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "sqlite: %s", message);
	return inv_backend_error(code, msg);
}

/* ------------------------------------------------------------ statements */

/*
 * The prepared statement `id`, or a fresh copy when the prepared one is in
 * the middle of a scan whose callback re-entered the same operation.
 */
static int stmt_acquire(sq_conn *in, enum sq_stmt_id id, sqlite3_stmt **out)
{
	int rc;

	if (!sqlite3_stmt_busy(in->stmt[id])) {
		*out = in->stmt[id];
		return 0;
	}
	rc = sqlite3_prepare_v2(in->db, stmt_sql[id], -1, out, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(in->db, rc, "prepare");
	return 0;
}

static void stmt_release(sq_conn *in, enum sq_stmt_id id, sqlite3_stmt *st)
{
	if (st == in->stmt[id])
		sqlite3_reset(st);
	else
		sqlite3_finalize(st);
}

/* Step a statement that returns no rows, then reset it. */
static int stmt_run(sq_conn *in, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		int err = sq_fail(in->db, rc, what);

		sqlite3_reset(st);
		return err;
	}
	sqlite3_reset(st);
	return 0;
}

/* Run a statement bound by the caller that yields at most one int64: 1
 * with *out set, 0 for no row, < 0 on error; reset either way. */
static int step_int64(sq_conn *in, sqlite3_stmt *st, int64_t *out, const char *what)
{
	int rc = sqlite3_step(st), ret;

	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		ret = 1;
	} else {
		ret = rc == SQLITE_DONE ? 0 : sq_fail(in->db, rc, what);
	}
	sqlite3_reset(st);
	return ret;
}

static int bind_uuid(sqlite3_stmt *st, int i, const inv_uuid *u)
{
	return sqlite3_bind_blob(st, i, u->bytes, (int)sizeof(u->bytes), SQLITE_STATIC);
}

static int is_nil(const inv_uuid *u)
{
	static const inv_uuid nil;

	return memcmp(u->bytes, nil.bytes, sizeof(nil.bytes)) == 0;
}

/* A UUID that may be absent: NULL in the database. */
static int bind_uuid_opt(sqlite3_stmt *st, int i, const inv_uuid *u)
{
	if (!u || is_nil(u))
		return sqlite3_bind_null(st, i);
	return bind_uuid(st, i, u);
}

/* Read a UUID column; NULL reads as the nil UUID.  Anything but 16 bytes
 * means the file was altered behind our back. */
static int column_uuid(sqlite3_stmt *st, int col, inv_uuid *out)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (!p && n == 0) {
		memset(out->bytes, 0, sizeof(out->bytes));
		return 0;
	}
	if (n != (int)sizeof(out->bytes))
		return sq_error(INV_EFORMAT, "corrupt row: a UUID column is not 16 bytes");
	memcpy(out->bytes, p, sizeof(out->bytes));
	return 0;
}

/* ------------------------------------------------------------ transactions */

/*
 * SQLite rolls a transaction back by itself after some errors (SQLITE_FULL,
 * SQLITE_IOERR, SQLITE_NOMEM).  Without this check the next statements of
 * the batch would run in autocommit mode and store a partial batch.
 */
static int txn_check(sq_conn *in)
{
	if (!in->in_txn)
		return sq_error(INV_EINVAL, "no transaction is open");
	if (sqlite3_get_autocommit(in->db))
		return sq_error(INV_EBACKEND,
		                "the transaction was rolled back after an earlier error");
	return 0;
}

static int txn_check_write(sq_conn *in)
{
	int err = txn_check(in);

	if (err)
		return err;
	if (!in->txn_write)
		return sq_error(INV_EINVAL, "write in a read transaction");
	return 0;
}

/* The store this thread has a transaction open on, to refuse a second
 * begin() that would wait for itself. */
static _Thread_local const sq_store *thread_txn;

static int reader_open(sq_store *s, sq_conn **out);
static void group_next(sq_store *s, sq_waiter *self);

static const char sync_failed[] =
	"sqlite: an fsync of the WAL failed, so batches committed since the last "
	"durable one may or may not be stored; the instance refuses writes, reopen "
	"the database";

static int step_once(sq_conn *c, enum sq_stmt_id id, const char *what)
{
	return stmt_run(c, c->stmt[id], what);
}

/* End the SQLite transaction, whatever state an error left it in. */
static void txn_abort(sq_conn *in)
{
	if (!sqlite3_get_autocommit(in->db)) {
		sqlite3_step(in->stmt[ST_ROLLBACK]);
		sqlite3_reset(in->stmt[ST_ROLLBACK]);
	}
}

static void conn_enter(sq_conn *c, int write)
{
	c->in_txn = 1;
	c->txn_write = write;
	c->org_pending = 0;
	if (!write || !c->kept) {
		c->ls_any = -1;
		c->org_seen = 0;
		c->jn_known = 0;
	}
	c->kept = 0; /* until the batch ends well */
}

/* The main database's data version: it changes with every commit to the
 * file, this connection's or another's (SQLITE_FCNTL_DATA_VERSION); 0
 * when SQLite cannot tell, which no kept row trusts. */
static unsigned data_version(sq_conn *c)
{
	unsigned v = 0;

	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK)
		return 0;
	return v;
}

static int org_write(sq_conn *in, const inv_uuid *org, int64_t base, int32_t policy);

/* Before a batch ends: a last sequence that no journal entry supplied is
 * written after all. */
static int org_flush(sq_conn *c)
{
	if (!c->org_pending)
		return 0;
	c->org_pending = 0;
	return org_write(c, &c->org_pending_org, c->org_pending_seq, c->org_pending_policy);
}

/* A read transaction on a connection of its own: never waits for `w`. */
static int begin_read(sq_store *s, sq_conn **out)
{
	sq_conn *c;
	int err;

	pthread_mutex_lock(&s->mu);
	c = s->idle;
	if (c)
		s->idle = c->next;
	pthread_mutex_unlock(&s->mu);
	if (!c && (err = reader_open(s, &c)))
		return err;
	if ((err = step_once(c, ST_BEGIN_READ, "begin read"))) {
		pthread_mutex_lock(&s->mu);
		c->next = s->idle;
		s->idle = c;
		pthread_mutex_unlock(&s->mu);
		return err;
	}
	conn_enter(c, 0);
	*out = c;
	return 0;
}

static void end_read(sq_conn *c)
{
	sq_store *s = c->store;

	c->in_txn = 0;
	pthread_mutex_lock(&s->mu);
	c->next = s->idle;
	s->idle = c;
	pthread_mutex_unlock(&s->mu);
}

/*
 * Take `w` for a batch: wait while another thread uses it, open the
 * group's transaction when none is open, and start the batch's savepoint.
 * A read of a ":memory:" database takes `w` too, but only between groups,
 * so that it never sees a batch that is not committed.
 */
static int begin_write(sq_store *s, int write)
{
	sq_conn *w = s->w;
	int err;

	pthread_mutex_lock(&s->mu);
	if (write) {
		s->waiting++;
		if (s->opts.group_wait_us > 0)
			pthread_cond_signal(&s->company_cv); /* a leader may wait for company */
		while (s->busy)
			pthread_cond_wait(&s->cv, &s->mu);
		s->waiting--;
	} else {
		while (s->busy || s->txn_open)
			pthread_cond_wait(&s->cv, &s->mu);
	}
	if (write && s->sync_err) {
		pthread_cond_signal(&s->cv); /* `w` stays free for the next */
		pthread_mutex_unlock(&s->mu);
		return sq_error(INV_EBACKEND, sync_failed);
	}
	s->busy = 1;
	pthread_mutex_unlock(&s->mu);
	if (!write) {
		err = step_once(w, ST_BEGIN_READ, "begin read");
	} else if (!s->txn_open) {
		/* the first batch of a group needs no savepoint of its own */
		err = step_once(w, ST_BEGIN_WRITE, "begin write");
		if (!err)
			s->txn_open = 1;
		if (err || !w->kept_dv || data_version(w) != w->kept_dv)
			w->kept = 0; /* another connection committed since */
		w->opened_txn = 1;
	} else {
		err = step_once(w, ST_SAVEPOINT, "begin write");
		w->opened_txn = 0;
	}
	if (err) {
		/* the group, if any, goes on without this batch */
		pthread_mutex_lock(&s->mu);
		group_next(s, NULL);
		pthread_mutex_unlock(&s->mu);
		return err;
	}
	conn_enter(w, write);
	return 0;
}

/* A group commits once it holds this many batches, even with more waiting,
 * so that a batch is answered within a bounded number of others. */
enum { GROUP_MAX = 64 };

/* `w` was set free: wake one writer waiting for it, or every waiter of a
 * ":memory:" database, whose readers wait for it too. */
static void w_free(sq_store *s)
{
	if (s->shared_reads)
		pthread_cond_signal(&s->cv);
	else
		pthread_cond_broadcast(&s->cv);
}

/* Answer `m` with `err`; `m` is not touched after this. */
static void waiter_answer(sq_waiter *m, int err, const char *msg)
{
	m->err = err;
	if (err)
		snprintf(m->msg, sizeof(m->msg), "%s", msg);
	sem_post(&m->sem);
}

/* Answer every member of the group with `err`; or, when the group
 * committed as commit `gen` (deferred fsync), queue them for its fsync. */
static void group_answer(sq_store *s, int err, const char *msg, uint64_t gen)
{
	sq_waiter *m, *next;

	for (m = s->group; m; m = next) {
		next = m->next;
		if (err || gen == 0) {
			waiter_answer(m, err, msg);
			continue;
		}
		m->gen = gen;
		m->queued = 1;
		m->next = NULL;
		*s->durable_tail = m;
		s->durable_tail = &m->next;
	}
	s->group = NULL;
	s->group_tail = &s->group;
	s->members = 0;
	s->txn_open = 0;
}

static void sync_next(sq_store *s, sq_waiter *self);

/*
 * Called with `mu` held by the thread using `w`, after its batch joined the
 * group (self: its waiter) or left it (NULL): hand `w` to a waiting writer,
 * or commit the group (or roll back an empty one) and answer its members,
 * running their fsync when `self` is one of them.  Returns with `mu` held
 * and `w` free.
 */
static void group_next(sq_store *s, sq_waiter *self)
{
	sq_conn *w = s->w;
	int waiting;

	if (s->waiting == 0 && s->members > 0 && s->opts.group_wait_us > 0) {
		/* the option: wait a moment for another batch to join */
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)s->opts.group_wait_us * 1000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (s->waiting == 0 &&
		       pthread_cond_timedwait(&s->company_cv, &s->mu, &until) == 0)
			;
	}
	waiting = s->waiting;
	if (s->members >= GROUP_MAX)
		waiting = 0; /* answer those waiting rather than grow the group */
	if (s->txn_open && sqlite3_get_autocommit(w->db)) {
		/* SQLite rolled the whole transaction back after an error:
		 * every batch of the group is gone, none was answered yet */
		group_answer(s, INV_EBACKEND, "sqlite: the group's transaction was rolled "
		             "back after an error in another batch; retry", 0);
		w->kept = 0;
	} else if (waiting == 0 && s->txn_open) {
		int err = 0, members = s->members;
		uint64_t gen = 0;
		char msg[320] = "";

		/* `w` stays ours (busy) while the fsync runs without the mutex */
		pthread_mutex_unlock(&s->mu);
		if (members > 0) {
			err = step_once(w, ST_COMMIT, "commit");
			if (err) {
				snprintf(msg, sizeof(msg), "%s; the transaction was rolled back",
				         inv_error_last()->message);
				txn_abort(w);
				w->kept = 0;
			} else {
				w->kept_dv = data_version(w);
			}
		} else {
			txn_abort(w); /* nothing to keep: release the file's write lock */
		}
		pthread_mutex_lock(&s->mu);
		if (!err && members > 0 && s->defer_sync)
			gen = ++s->committed;
		group_answer(s, err, msg, gen);
	}
	s->busy = 0;
	w_free(s);
	sync_next(s, self);
}

/* The batch on `w` is discarded alone: back to its savepoint, or, when it
 * opened the group's transaction (and so is alone in it), the whole
 * transaction rolled back. */
static void abort_write(sq_store *s)
{
	sq_conn *w = s->w;

	w->in_txn = 0;
	w->txn_write = 0;
	w->kept = 0;
	if (w->opened_txn) {
		txn_abort(w);
	} else if (!sqlite3_get_autocommit(w->db)) {
		step_once(w, ST_ROLLBACK_TO, "roll back");
		step_once(w, ST_RELEASE, "roll back");
	}
	pthread_mutex_lock(&s->mu);
	if (w->opened_txn)
		s->txn_open = 0;
	group_next(s, NULL);
	pthread_mutex_unlock(&s->mu);
}

/* Open the WAL for fsync, and make its directory entry durable once, as
 * SQLite does on a file's first sync. */
static int wal_open(sq_store *s)
{
	char *dir = strdup(s->wal_path), *slash;
	int fd, rc = 0;

	if (!dir)
		return -1;
	s->wal_fd = open(s->wal_path, O_RDONLY | O_CLOEXEC);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_CLOEXEC | O_DIRECTORY);
	if (fd < 0 || fsync(fd) != 0)
		rc = -1;
	if (fd >= 0)
		close(fd);
	free(dir);
	return s->wal_fd < 0 ? -1 : rc;
}

/*
 * Called with `mu` held after commits may have joined the durability
 * queue: unless an fsync is running, run one, here when `self` is queued,
 * or else by the oldest waiter's thread, woken for its turn.  An fsync
 * covers every commit before it starts; it answers the waiters it made
 * durable and passes the turn on to the oldest one left.  Once an fsync
 * has failed, every waiter is answered with the failure.
 */
static void sync_next(sq_store *s, sq_waiter *self)
{
	while (!s->syncing && s->durable) {
		uint64_t upto = s->committed;
		sq_waiter *m;
		int rc = 0;

		if (!self || !self->queued) {
			if (!s->durable->turn) {
				s->durable->turn = 1;
				sem_post(&s->durable->sem);
			}
			return;
		}
		if (!s->sync_err) {
			s->syncing = 1;
			pthread_mutex_unlock(&s->mu);
			rc = s->wal_fd < 0 ? wal_open(s) : 0;
			while (rc == 0 && fdatasync(s->wal_fd) != 0)
				if (errno != EINTR)
					rc = -1;
			pthread_mutex_lock(&s->mu);
			s->syncing = 0;
			if (rc)
				s->sync_err = 1;
			else
				s->synced = upto;
		}
		while ((m = s->durable) && (s->sync_err || m->gen <= s->synced)) {
			s->durable = m->next;
			if (!s->durable)
				s->durable_tail = &s->durable;
			m->queued = 0;
			waiter_answer(m, s->sync_err ? INV_EBACKEND : 0, sync_failed);
		}
		self = NULL; /* answered: the turn goes to the oldest left */
	}
}

/*
 * The batch on `w` ended well: join the group and wait for its outcome,
 * calling release(arg) once the batch is in the group (before anything
 * else can happen to it), so that the caller may let its next batch in.
 */
static int end_write(sq_store *s, void (*release)(void *), void *arg)
{
	sq_conn *w = s->w;
	sq_waiter me;
	int err;

	memset(&me, 0, sizeof(me));
	if (sem_init(&me.sem, 0, 0) != 0) {
		err = sq_error(INV_ENOMEM, "cannot create a semaphore");
	} else {
		err = w->opened_txn ? 0 : step_once(w, ST_RELEASE, "commit");
		if (err)
			sem_destroy(&me.sem);
	}
	w->in_txn = 0;
	w->txn_write = 0;
	if (err) {
		char msg[320];

		snprintf(msg, sizeof(msg), "%s; the transaction was rolled back",
		         inv_error_last()->message);
		abort_write(s);
		if (release)
			release(arg);
		return inv_backend_error(err, msg);
	}
	w->kept = 1;
	pthread_mutex_lock(&s->mu);
	*s->group_tail = &me;
	s->group_tail = &me.next;
	s->members++;
	if (release) {
		/* `w` stays ours, so the group cannot end meanwhile */
		pthread_mutex_unlock(&s->mu);
		release(arg);
		pthread_mutex_lock(&s->mu);
	}
	group_next(s, &me);
	pthread_mutex_unlock(&s->mu);
	for (;;) {
		while (sem_wait(&me.sem) != 0)
			; /* EINTR */
		if (!me.turn)
			break; /* answered */
		pthread_mutex_lock(&s->mu);
		me.turn = 0;
		sync_next(s, &me);
		pthread_mutex_unlock(&s->mu);
	}
	sem_destroy(&me.sem);
	if (me.err)
		return inv_backend_error(me.err, me.msg);
	return 0;
}

/* A read of a ":memory:" database on `w` ends. */
static void end_read_on_w(sq_store *s)
{
	sq_conn *w = s->w;

	w->in_txn = 0;
	txn_abort(w);
	pthread_mutex_lock(&s->mu);
	s->busy = 0;
	w_free(s);
	pthread_mutex_unlock(&s->mu);
}

static int sq_begin(void *instance, const inv_uuid *org, int write, void **txn)
{
	sq_store *s = instance;
	sq_conn *c;
	int err;

	(void)org; /* the write lock is database-wide, stronger than per org */
	if (!s || !txn)
		return sq_error(INV_EINVAL, "begin: NULL argument");
	if (write && s->read_only)
		return sq_error(INV_EREADONLY, "the database was opened read-only");
	if (thread_txn == s)
		return sq_error(INV_EBUSY, "this thread already has a transaction open");
	if (!write && s->shared_reads) {
		err = begin_read(s, &c);
	} else {
		c = s->w;
		err = begin_write(s, write);
	}
	if (err)
		return err;
	thread_txn = s;
	*txn = c;
	return 0;
}

/* Commit ends the transaction whether it succeeds or not: on failure every
 * write of the transaction is discarded, as rollback() would.  A write
 * transaction returns once its batch is durable; `release`, when not NULL,
 * is called once the organization's next batch may begin (the vtable's
 * commit_release()). */
static int commit_txn(sq_conn *in, void (*release)(void *), void *arg)
{
	sq_store *s = in->store;
	int err;

	thread_txn = NULL;
	err = txn_check(in);
	if (!err && in->txn_write)
		err = org_flush(in);
	if (in != s->w) {
		if (!err)
			err = step_once(in, ST_COMMIT, "commit");
		txn_abort(in);
		end_read(in);
	} else if (!in->txn_write) {
		end_read_on_w(s);
	} else if (err) {
		char msg[600];

		snprintf(msg, sizeof(msg), "%s; the transaction was rolled back",
		         inv_error_last()->message);
		abort_write(s);
		err = inv_backend_error(err, msg);
	} else {
		return end_write(s, release, arg);
	}
	if (release)
		release(arg);
	return err;
}

static int sq_commit(void *txn)
{
	sq_conn *in = txn;

	if (!in || !in->in_txn)
		return sq_error(INV_EINVAL, "commit: no transaction is open");
	return commit_txn(in, NULL, NULL);
}

static int sq_commit_release(void *txn, void (*release)(void *), void *arg)
{
	sq_conn *in = txn;

	if (!release)
		return sq_commit(txn);
	if (!in || !in->in_txn) {
		release(arg);
		return sq_error(INV_EINVAL, "commit: no transaction is open");
	}
	return commit_txn(in, release, arg);
}

static void sq_rollback(void *txn)
{
	sq_conn *in = txn;
	sq_store *s;

	if (!in || !in->in_txn)
		return;
	s = in->store;
	thread_txn = NULL;
	if (in != s->w) {
		txn_abort(in);
		end_read(in);
	} else if (!in->txn_write) {
		end_read_on_w(s);
	} else {
		abort_write(s);
	}
}

/* ------------------------------------------------------------ organizations */

static int org_seen(const sq_conn *in, const inv_uuid *org)
{
	return in->org_seen && memcmp(&in->org_seen_org, org, sizeof(*org)) == 0;
}

static int journal_last(sq_conn *in, const inv_uuid *org, int64_t up_to, int64_t *last);

static int sq_org_get(void *txn, const inv_uuid *org, inv_org_record *out)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_ORG_GET];
	int rc, err = txn_check(in);

	if (err)
		return err;
	if (!org_seen(in, org)) {
		int64_t base = 0, last = 0;
		int32_t policy = 0;

		bind_uuid(st, 1, org);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			base = sqlite3_column_int64(st, 0);
			policy = sqlite3_column_int(st, 1);
		} else {
			err = rc == SQLITE_DONE ? INV_ENOTFOUND
			                        : sq_fail(in->db, rc, "read organization");
		}
		sqlite3_reset(st);
		if (err || (err = journal_last(in, org, JOURNAL_SEQ_MAX, &last)) < 0)
			return err;
		in->org_seen = 1;
		in->org_seen_org = *org;
		in->org_seen_seq = last > base ? last : base;
		in->org_seen_policy = policy;
	}
	out->org = *org;
	out->last_sequence = in->org_seen_seq;
	out->negative_policy = in->org_seen_policy;
	out->reserved = 0;
	if (in->org_pending && memcmp(&in->org_pending_org, org, sizeof(*org)) == 0)
		out->last_sequence = in->org_pending_seq;
	return 0;
}

static int org_write(sq_conn *in, const inv_uuid *org, int64_t base, int32_t policy)
{
	sqlite3_stmt *st = in->stmt[ST_ORG_PUT];

	in->org_seen = 0;
	bind_uuid(st, 1, org);
	sqlite3_bind_int64(st, 2, base);
	sqlite3_bind_int(st, 3, policy);
	return stmt_run(in, st, "write organization");
}

/*
 * A batch's org_put only moves the last sequence on to the sequence of the
 * journal entry it appends next: that is remembered, not written, and the
 * entry itself says it.  Anything else (a new organization, a policy, a
 * sequence without an entry) is written, at the latest when the batch
 * ends (org_flush).
 */
static int sq_org_put(void *txn, const inv_org_record *rec)
{
	sq_conn *in = txn;
	inv_org_record cur;
	int err = txn_check_write(in);

	if (err)
		return err;
	in->org_pending = 0;
	err = sq_org_get(txn, &rec->org, &cur);
	if (err && err != INV_ENOTFOUND)
		return err;
	if (err == 0 && cur.negative_policy == rec->negative_policy &&
	    rec->last_sequence >= cur.last_sequence) {
		if (rec->last_sequence > cur.last_sequence) {
			in->org_pending = 1;
			in->org_pending_org = rec->org;
			in->org_pending_seq = rec->last_sequence;
			in->org_pending_policy = rec->negative_policy;
		}
		return 0;
	}
	return org_write(in, &rec->org, rec->last_sequence, rec->negative_policy);
}

/* ------------------------------------------------------------ locations */

static int sq_location_scan(void *txn, const inv_uuid *org,
                            inv_location_record_fn fn, void *payload)
{
	sq_conn *in = txn;
	sqlite3_stmt *st;
	int rc, err = txn_check(in);

	if (err || (err = stmt_acquire(in, ST_LOCATION_SCAN, &st)))
		return err;
	bind_uuid(st, 1, org);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		inv_location_record rec;

		if ((err = column_uuid(st, 0, &rec.uuid)))
			break;
		rec.type = sqlite3_column_int(st, 1);
		rec.is_default = sqlite3_column_int(st, 2);
		if ((err = fn(&rec, payload)))
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = sq_fail(in->db, rc, "scan locations");
	stmt_release(in, ST_LOCATION_SCAN, st);
	return err;
}

static int sq_location_put(void *txn, const inv_uuid *org, const inv_location_record *rec)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_LOCATION_PUT];
	int err = txn_check_write(in);

	if (err)
		return err;
	bind_uuid(st, 1, org);
	bind_uuid(st, 2, &rec->uuid);
	sqlite3_bind_int(st, 3, rec->type);
	sqlite3_bind_int(st, 4, rec->is_default);
	return stmt_run(in, st, "write location");
}

/* ------------------------------------------------------------ tracking */

static int sq_tracking_get(void *txn, const inv_uuid *org, const inv_uuid *product,
                           int32_t *tracked)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_TRACKING_GET];
	int rc, err = txn_check(in);

	if (err)
		return err;
	bind_uuid(st, 1, org);
	bind_uuid(st, 2, product);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*tracked = sqlite3_column_int(st, 0);
	else if (rc == SQLITE_DONE)
		err = INV_ENOTFOUND;
	else
		err = sq_fail(in->db, rc, "read tracking");
	sqlite3_reset(st);
	return err;
}

static int sq_tracking_put(void *txn, const inv_uuid *org, const inv_uuid *product,
                           int32_t tracked)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_TRACKING_PUT];
	int err = txn_check_write(in);

	if (err)
		return err;
	bind_uuid(st, 1, org);
	bind_uuid(st, 2, product);
	sqlite3_bind_int(st, 3, tracked);
	return stmt_run(in, st, "write tracking");
}

static int sq_tracking_scan(void *txn, const inv_uuid *org,
                            inv_tracking_record_fn fn, void *payload)
{
	sq_conn *in = txn;
	sqlite3_stmt *st;
	int rc, err = txn_check(in);

	if (err || (err = stmt_acquire(in, ST_TRACKING_SCAN, &st)))
		return err;
	bind_uuid(st, 1, org);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		inv_uuid product;

		if ((err = column_uuid(st, 0, &product)))
			break;
		if ((err = fn(&product, sqlite3_column_int(st, 1), payload)))
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = sq_fail(in->db, rc, "scan tracking");
	stmt_release(in, ST_TRACKING_SCAN, st);
	return err;
}

/* ------------------------------------------------------------ variants */

/* Columns in VARIANT_COLUMNS order. */
static int variant_row(sqlite3_stmt *st, inv_variant_record *out)
{
	int err;

	if ((err = column_uuid(st, 0, &out->location)) ||
	    (err = column_uuid(st, 1, &out->variant)) ||
	    (err = column_uuid(st, 2, &out->product)))
		return err;
	out->balance = sqlite3_column_int64(st, 3);
	out->updated = sqlite3_column_int64(st, 4);
	return 0;
}

/* ------------------------------------------------------------ variant ids
 *
 * sq_ids: what the write connection knows of variant row ids, so that a
 * balance update is one descent by integer.  A hint, never the truth: the
 * update by id also matches the key and product, so a stale id (a row
 * rolled back, a hash shared by two keys) writes nothing and the key is
 * looked up.  Grows with the variants written, up to IDS_MAX_SLOTS
 * (16 MiB); past that, a full bucket forgets its oldest slot.
 */
enum { IDS_BUCKET = 4, IDS_MIN_SLOTS = 1024, IDS_MAX_SLOTS = 1 << 20 };

static uint64_t ids_tag(const inv_uuid *org, const inv_uuid *location, const inv_uuid *variant)
{
	const inv_uuid *part[3] = { org, location, variant };
	uint64_t h = 0x9E3779B97F4A7C15u, w[2];
	int i, j;

	for (i = 0; i < 3; i++) {
		memcpy(w, part[i]->bytes, sizeof(w));
		for (j = 0; j < 2; j++) {
			h = (h ^ w[j]) * 0xBF58476D1CE4E5B9u;
			h ^= h >> 31;
		}
	}
	h *= 0x94D049BB133111EBu;
	h ^= h >> 29;
	return h ? h : 1;
}

static sq_id_slot *ids_bucket(const sq_conn *in, uint64_t tag)
{
	return in->ids + ((size_t)tag & (in->ids_slots - 1) & ~(size_t)(IDS_BUCKET - 1));
}

/* The remembered id of `tag`, 0 when none. */
static int64_t ids_get(const sq_conn *in, uint64_t tag)
{
	const sq_id_slot *b;
	int i;

	if (!in->ids_slots)
		return 0;
	b = ids_bucket(in, tag);
	for (i = 0; i < IDS_BUCKET; i++)
		if (b[i].tag == tag)
			return b[i].id;
	return 0;
}

static void ids_set(sq_conn *in, uint64_t tag, int64_t id)
{
	sq_id_slot *b = ids_bucket(in, tag);
	int i;

	for (i = 0; i < IDS_BUCKET; i++) {
		if (b[i].tag == tag || b[i].tag == 0) {
			in->ids_used += b[i].tag == 0;
			b[i].tag = tag;
			b[i].id = id;
			return;
		}
	}
	memmove(b, b + 1, (IDS_BUCKET - 1) * sizeof(*b));
	b[IDS_BUCKET - 1].tag = tag;
	b[IDS_BUCKET - 1].id = id;
}

/* Remember `id` for the key; out of memory, it is simply not remembered. */
static void ids_put(sq_conn *in, uint64_t tag, int64_t id)
{
	if (in->ids_slots == 0 ||
	    (in->ids_used >= in->ids_slots / 2 && in->ids_slots < IDS_MAX_SLOTS)) {
		size_t n = in->ids_slots ? in->ids_slots * 2 : IDS_MIN_SLOTS, i;
		sq_id_slot *old = in->ids, *nids = calloc(n, sizeof(*nids));
		size_t old_slots = in->ids_slots;

		if (!nids && !old)
			return;
		if (nids) {
			in->ids = nids;
			in->ids_slots = n;
			in->ids_used = 0;
			for (i = 0; i < old_slots; i++)
				if (old[i].tag)
					ids_set(in, old[i].tag, old[i].id);
			free(old);
		}
	}
	ids_set(in, tag, id);
}

/* One lookup with the prepared statement; 1 found, 0 not found, < 0 error. */
static int variant_lookup(sq_conn *in, const inv_uuid *org, const inv_uuid *location,
                          const inv_uuid *variant, inv_variant_record *out)
{
	sqlite3_stmt *st = in->stmt[ST_VARIANT_GET];
	int rc, ret;

	bind_uuid(st, 1, org);
	bind_uuid(st, 2, location);
	bind_uuid(st, 3, variant);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* the key columns are the caller's own: read only the rest */
		ret = column_uuid(st, 0, &out->product);
		if (ret == 0) {
			out->location = *location;
			out->variant = *variant;
			out->balance = sqlite3_column_int64(st, 1);
			out->updated = sqlite3_column_int64(st, 2);
			if (in == in->store->w)
				ids_put(in, ids_tag(org, location, variant),
				        sqlite3_column_int64(st, 3));
			ret = 1;
		}
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = sq_fail(in->db, rc, "read variant");
	}
	sqlite3_reset(st);
	return ret;
}

static void bind_variant(sqlite3_stmt *st, const inv_uuid *org, const inv_variant_record *rec)
{
	bind_uuid(st, 1, org);
	bind_uuid(st, 2, &rec->location);
	bind_uuid(st, 3, &rec->variant);
	bind_uuid(st, 4, &rec->product);
	sqlite3_bind_int64(st, 5, rec->balance);
	sqlite3_bind_int64(st, 6, rec->updated);
}

/* The balance and time of the row `id` when it is still the record's
 * variant with the same product; 1 written, 0 not, < 0 error. */
static int variant_update_id(sq_conn *in, const inv_uuid *org, const inv_variant_record *rec,
                             int64_t id)
{
	sqlite3_stmt *st = in->stmt[ST_VARIANT_UPDATE];
	int err;

	if (!in->upd_bound || memcmp(&in->upd_org, org, sizeof(*org)) != 0) {
		in->upd_org = *org;
		bind_uuid(st, 1, &in->upd_org);
	}
	if (!in->upd_bound || memcmp(&in->upd_location, &rec->location, sizeof(*org)) != 0) {
		in->upd_location = rec->location;
		bind_uuid(st, 2, &in->upd_location);
	}
	in->upd_bound = 1;
	bind_uuid(st, 3, &rec->variant);
	bind_uuid(st, 4, &rec->product);
	sqlite3_bind_int64(st, 5, rec->balance);
	sqlite3_bind_int64(st, 6, rec->updated);
	sqlite3_bind_int64(st, 7, id);
	if ((err = stmt_run(in, st, "write variant")))
		return err;
	return sqlite3_changes(in->db) > 0;
}

/* The id of the record's row: 1 found, 0 not, < 0 error. */
static int variant_find_id(sq_conn *in, const inv_uuid *org, const inv_variant_record *rec,
                           int64_t *id)
{
	sqlite3_stmt *st = in->stmt[ST_VARIANT_ID];

	bind_uuid(st, 1, org);
	bind_uuid(st, 2, &rec->location);
	bind_uuid(st, 3, &rec->variant);
	return step_int64(in, st, id, "read variant");
}

/*
 * A batch mostly rewrites balances that exist: by the remembered id, that
 * is one descent by integer and an overwrite in place.  The UPDATE leaves
 * `product` alone and matches only a row that already has it: assigning an
 * indexed column, even its own value, makes SQLite rewrite the row's
 * variants_by_product entry.  An id not remembered costs one descent of
 * the key's index first; a new record, or one whose product changes, the
 * upsert.
 */
static int variant_store(sq_conn *in, const inv_uuid *org, const inv_variant_record *rec)
{
	uint64_t tag = ids_tag(org, &rec->location, &rec->variant);
	int64_t known = ids_get(in, tag), id = 0;
	sqlite3_stmt *st;
	int ret;

	if (known && (ret = variant_update_id(in, org, rec, known)) != 0)
		return ret < 0 ? ret : 0;
	if ((ret = variant_find_id(in, org, rec, &id)) < 0)
		return ret;
	if (ret && id != known && (ret = variant_update_id(in, org, rec, id)) != 0) {
		if (ret > 0)
			ids_put(in, tag, id);
		return ret < 0 ? ret : 0;
	}
	st = in->stmt[ST_VARIANT_PUT];
	bind_variant(st, org, rec);
	if ((ret = stmt_run(in, st, "write variant")))
		return ret;
	ids_put(in, tag, id ? id : sqlite3_last_insert_rowid(in->db));
	return 0;
}

static int sq_variant_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                          const inv_uuid *variant, inv_variant_record *out)
{
	sq_conn *in = txn;
	int ret = txn_check(in);

	if (ret)
		return ret;
	ret = variant_lookup(in, org, location, variant, out);
	return ret == 1 ? 0 : ret == 0 ? INV_ENOTFOUND : ret;
}

static int sq_variant_put(void *txn, const inv_uuid *org, const inv_variant_record *rec)
{
	sq_conn *in = txn;
	int err = txn_check_write(in);

	return err ? err : variant_store(in, org, rec);
}

static int sq_variant_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                           const inv_uuid *product, inv_variant_record_fn fn, void *payload)
{
	sq_conn *in = txn;
	enum sq_stmt_id id = location ? (product ? ST_VARIANT_SCAN_BOTH : ST_VARIANT_SCAN_LOCATION)
	                              : (product ? ST_VARIANT_SCAN_PRODUCT : ST_VARIANT_SCAN_ALL);
	sqlite3_stmt *st;
	int rc, err = txn_check(in);

	if (err || (err = stmt_acquire(in, id, &st)))
		return err;
	bind_uuid(st, 1, org);
	if (location)
		bind_uuid(st, 2, location);
	if (product)
		bind_uuid(st, 3, product);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		inv_variant_record rec;

		if ((err = variant_row(st, &rec)) || (err = fn(&rec, payload)))
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = sq_fail(in->db, rc, "scan variants");
	stmt_release(in, id, st);
	return err;
}

/* The batch forms loop one prepared statement: inside one transaction a
 * step costs a B-tree descent and nothing else, so a batch of 1,000 needs no
 * statement preparation and no extra round trip. */
static int sq_variant_get_many(void *txn, const inv_uuid *org, size_t count,
                               const inv_variant_key *keys, inv_variant_record *out,
                               int32_t *found)
{
	sq_conn *in = txn;
	int ret = txn_check(in);
	size_t i;

	if (ret)
		return ret;
	for (i = 0; i < count; i++) {
		ret = variant_lookup(in, org, &keys[i].location, &keys[i].variant, &out[i]);
		if (ret < 0)
			return ret;
		found[i] = ret;
	}
	return 0;
}

static int sq_variant_put_many(void *txn, const inv_uuid *org, size_t count,
                               const inv_variant_record *recs)
{
	sq_conn *in = txn;
	int err = txn_check_write(in);
	size_t i;

	for (i = 0; !err && i < count; i++)
		err = variant_store(in, org, &recs[i]);
	return err;
}

/* ------------------------------------------------------------ low stock */

/* Columns in LOW_STOCK_COLUMNS order. */
static int low_stock_row(sqlite3_stmt *st, inv_low_stock_record *out)
{
	int err;

	if ((err = column_uuid(st, 0, &out->location)) ||
	    (err = column_uuid(st, 1, &out->product)) ||
	    (err = column_uuid(st, 2, &out->variant)))
		return err;
	out->has_level = sqlite3_column_type(st, 3) != SQLITE_NULL;
	out->level = out->has_level ? sqlite3_column_int64(st, 3) : 0;
	out->alert = sqlite3_column_int(st, 4);
	return 0;
}

static void bind_low_stock_key(sqlite3_stmt *st, const inv_uuid *org,
                               const inv_uuid *location, const inv_uuid *product,
                               const inv_uuid *variant)
{
	bind_uuid(st, 1, org);
	bind_uuid(st, 2, location);
	bind_uuid(st, 3, product);
	bind_uuid(st, 4, variant);
}

/* 1 when the location has low-stock entries, 0 when not, < 0 on error;
 * asked of the database once, then kept while nothing changed them. */
static int low_stock_any(sq_conn *in, const inv_uuid *org, const inv_uuid *location)
{
	sqlite3_stmt *st;
	int rc;

	if (in->ls_any >= 0 && memcmp(&in->ls_org, org, sizeof(*org)) == 0 &&
	    memcmp(&in->ls_location, location, sizeof(*location)) == 0)
		return in->ls_any;
	st = in->stmt[ST_LOW_STOCK_ANY];
	bind_uuid(st, 1, org);
	bind_uuid(st, 2, location);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		int err = sq_fail(in->db, rc, "read low-stock entries");

		sqlite3_reset(st);
		return err;
	}
	sqlite3_reset(st);
	in->ls_any = rc == SQLITE_ROW;
	in->ls_org = *org;
	in->ls_location = *location;
	return in->ls_any;
}

static int sq_low_stock_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                            const inv_uuid *product, const inv_uuid *variant,
                            inv_low_stock_record *out)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_LOW_STOCK_GET];
	int rc, err = txn_check(in);

	if (err || (err = low_stock_any(in, org, location)) < 0)
		return err;
	if (err == 0)
		return INV_ENOTFOUND;
	err = 0;
	bind_low_stock_key(st, org, location, product, variant);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = low_stock_row(st, out);
	else if (rc == SQLITE_DONE)
		err = INV_ENOTFOUND;
	else
		err = sq_fail(in->db, rc, "read low-stock entry");
	sqlite3_reset(st);
	return err;
}

static int sq_low_stock_put(void *txn, const inv_uuid *org, const inv_low_stock_record *rec)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_LOW_STOCK_PUT];
	int err = txn_check_write(in);

	if (err)
		return err;
	in->ls_any = -1;
	bind_low_stock_key(st, org, &rec->location, &rec->product, &rec->variant);
	if (rec->has_level)
		sqlite3_bind_int64(st, 5, rec->level);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int(st, 6, rec->alert);
	return stmt_run(in, st, "write low-stock entry");
}

static int sq_low_stock_delete(void *txn, const inv_uuid *org, const inv_uuid *location,
                               const inv_uuid *product, const inv_uuid *variant)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_LOW_STOCK_DELETE];
	int err = txn_check_write(in);

	if (err)
		return err;
	bind_low_stock_key(st, org, location, product, variant);
	return stmt_run(in, st, "delete low-stock entry");
}

static int sq_low_stock_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                             const inv_uuid *product, inv_low_stock_record_fn fn,
                             void *payload)
{
	sq_conn *in = txn;
	enum sq_stmt_id id = product ? ST_LOW_STOCK_SCAN_PRODUCT : ST_LOW_STOCK_SCAN_LOCATION;
	sqlite3_stmt *st;
	int rc, err = txn_check(in);

	if (err || (err = stmt_acquire(in, id, &st)))
		return err;
	bind_uuid(st, 1, org);
	bind_uuid(st, 2, location);
	if (product)
		bind_uuid(st, 3, product);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		inv_low_stock_record rec;

		if ((err = low_stock_row(st, &rec)) || (err = fn(&rec, payload)))
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = sq_fail(in->db, rc, "scan low-stock entries");
	stmt_release(in, id, st);
	return err;
}

/* ------------------------------------------------------------ journal */

/* The packed records' layout; see the comment at the top of the file. */
enum {
	PACK_LAYOUT = 1,
	PACK_HEADER = 4,
	PACK_RECORD = 112,
	/* a BLOB is at most INT32_MAX bytes */
	PACK_MAX_RECORDS = (INT32_MAX - PACK_HEADER) / PACK_RECORD
};

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
	put_u16(p, (uint16_t)v);
	put_u16(p + 2, (uint16_t)(v >> 16));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)v);
	put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const unsigned char *p)
{
	return get_u16(p) | (uint32_t)get_u16(p + 2) << 16;
}

static uint64_t get_u64(const unsigned char *p)
{
	return get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void pack_header(unsigned char *p)
{
	put_u16(p, PACK_LAYOUT);
	put_u16(p + 2, PACK_RECORD);
}

static void pack_record(unsigned char *p, const inv_journal_record *r)
{
	put_u32(p, (uint32_t)r->kind);
	put_u32(p + 4, (uint32_t)r->low);
	memcpy(p + 8, r->product.bytes, 16);
	memcpy(p + 24, r->variant.bytes, 16);
	memcpy(p + 40, r->from.bytes, 16);
	memcpy(p + 56, r->to.bytes, 16);
	memcpy(p + 72, r->location.bytes, 16);
	put_u64(p + 88, (uint64_t)r->quantity);
	put_u64(p + 96, (uint64_t)r->before);
	put_u64(p + 104, (uint64_t)r->after);
}

static void unpack_record(const unsigned char *p, inv_journal_record *r)
{
	r->kind = (int32_t)get_u32(p);
	r->low = (int32_t)get_u32(p + 4);
	memcpy(r->product.bytes, p + 8, 16);
	memcpy(r->variant.bytes, p + 24, 16);
	memcpy(r->from.bytes, p + 40, 16);
	memcpy(r->to.bytes, p + 56, 16);
	memcpy(r->location.bytes, p + 72, 16);
	r->quantity = (int64_t)get_u64(p + 88);
	r->before = (int64_t)get_u64(p + 96);
	r->after = (int64_t)get_u64(p + 104);
}

/* Make room for `n` bytes in the instance's pack buffer. */
static int pack_reserve(sq_conn *in, size_t n)
{
	unsigned char *buf;

	if (n <= in->pack_cap)
		return 0;
	buf = realloc(in->pack, n);
	if (!buf)
		return sq_error(INV_ENOMEM, "out of memory writing the journal");
	in->pack = buf;
	in->pack_cap = n;
	return 0;
}

/* Check a stored BLOB against the entry's record count; 0 when it holds
 * exactly `count` records of the layout we know. */
static int pack_check(const unsigned char *p, size_t len, size_t count)
{
	if (len < PACK_HEADER || get_u16(p) != PACK_LAYOUT || get_u16(p + 2) != PACK_RECORD)
		return sq_error(INV_EFORMAT, "corrupt journal: unknown records layout");
	if ((len - PACK_HEADER) / PACK_RECORD != count ||
	    (len - PACK_HEADER) % PACK_RECORD != 0)
		return sq_error(INV_EFORMAT, "corrupt journal: an entry is missing records");
	return 0;
}

/*
 * The number of `org` in journal_orgs, which its entries' ids start with:
 * 1 with *num set, 0 when it has none yet (and `create` is 0), < 0 on
 * error.  Numbers are never changed or deleted, so that a batch usually
 * finds the one it needs remembered.
 */
static int journal_num(sq_conn *in, const inv_uuid *org, int create, int64_t *num)
{
	sqlite3_stmt *st;
	int err;

	if (!in->jn_known || memcmp(&in->jn_org, org, sizeof(*org)) != 0) {
		st = in->stmt[ST_JOURNAL_ORG_GET];
		bind_uuid(st, 1, org);
		in->jn_num = 0;
		if ((err = step_int64(in, st, &in->jn_num, "read the journal's organizations")) < 0)
			return err;
		if (in->jn_num < 0 || in->jn_num > JOURNAL_ORG_MAX)
			return sq_error(INV_EFORMAT, "corrupt journal: bad organization number");
		in->jn_known = 1;
		in->jn_org = *org;
	}
	if (in->jn_num == 0 && create) {
		st = in->stmt[ST_JOURNAL_ORG_PUT];
		bind_uuid(st, 1, org);
		if ((err = stmt_run(in, st, "append journal entry")))
			return err;
		in->jn_num = sqlite3_last_insert_rowid(in->db);
		if (in->jn_num < 1 || in->jn_num > JOURNAL_ORG_MAX) {
			in->jn_known = 0;
			return sq_error(INV_ETOOBIG, "too many organizations with a journal in one file");
		}
	}
	*num = in->jn_num;
	return *num != 0;
}

/* The sequence of the organization's last entry at most `up_to`: 1 with
 * *last set, 0 when there is none, < 0 on error.  One descent. */
static int journal_last(sq_conn *in, const inv_uuid *org, int64_t up_to, int64_t *last)
{
	sqlite3_stmt *st = in->stmt[ST_ENTRY_LAST];
	int64_t num, base, id = 0;
	int ret = journal_num(in, org, 0, &num);

	if (ret <= 0 || up_to < 0)
		return ret < 0 ? ret : 0;
	base = num << JOURNAL_SEQ_BITS;
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, base + (up_to < JOURNAL_SEQ_MAX ? up_to : JOURNAL_SEQ_MAX));
	ret = step_int64(in, st, &id, "read the journal's last sequence");
	if (ret == 1)
		*last = id - base;
	return ret;
}

/* A journal whose sequences went backwards would no longer be a log a
 * consumer can resume; one descent to the organization's last entry. */
static int journal_check_increasing(sq_conn *in, const inv_uuid *org, int64_t sequence)
{
	int64_t last = 0;
	int ret;

	if (org_seen(in, org) && sequence > in->org_seen_seq)
		return 0; /* the last entry is at most org_seen_seq */
	if ((ret = journal_last(in, org, JOURNAL_SEQ_MAX, &last)) < 0)
		return ret;
	if (ret && last >= sequence)
		return sq_error(INV_EBACKEND, "journal sequence not increasing");
	return 0;
}

static int sq_journal_append(void *txn, const inv_uuid *org,
                             const inv_journal_entry_record *rec)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_ENTRY_INSERT];
	int err = txn_check_write(in);
	int64_t num;
	size_t i, len;

	if (err)
		return err;
	if (rec->sequence < 0)
		return sq_error(INV_EINVAL, "negative journal sequence");
	if (rec->sequence > JOURNAL_SEQ_MAX)
		return sq_error(INV_ETOOBIG, "journal sequence beyond 2^40 - 1");
	if (rec->record_count > PACK_MAX_RECORDS)
		return sq_error(INV_ETOOBIG, "too many records in one journal entry");
	if ((err = journal_check_increasing(in, org, rec->sequence)) ||
	    (err = journal_num(in, org, 1, &num)) < 0)
		return err;
	len = PACK_HEADER + rec->record_count * PACK_RECORD;
	if ((err = pack_reserve(in, len)))
		return err;
	pack_header(in->pack);
	for (i = 0; i < rec->record_count; i++)
		pack_record(in->pack + PACK_HEADER + i * PACK_RECORD, &rec->records[i]);
	sqlite3_bind_int64(st, 1, (num << JOURNAL_SEQ_BITS) + rec->sequence);
	sqlite3_bind_int64(st, 2, rec->time);
	bind_uuid_opt(st, 3, rec->has_external_uuid ? &rec->external_uuid : NULL);
	bind_uuid_opt(st, 4, rec->has_user_uuid ? &rec->user_uuid : NULL);
	bind_uuid_opt(st, 5, rec->has_client_uuid ? &rec->client_uuid : NULL);
	if (rec->idempotency_key)
		sqlite3_bind_text(st, 6, rec->idempotency_key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)rec->record_count);
	sqlite3_bind_blob(st, 8, in->pack, (int)len, SQLITE_STATIC);
	if ((err = stmt_run(in, st, "append journal entry")))
		return err;
	if (org_seen(in, org) && rec->sequence > in->org_seen_seq)
		in->org_seen_seq = rec->sequence;
	if (in->org_pending && in->org_pending_seq == rec->sequence &&
	    memcmp(&in->org_pending_org, org, sizeof(*org)) == 0)
		in->org_pending = 0; /* the entry is the last sequence now */
	return 0;
}

/* A UUID column that is NULL when absent: sets *has accordingly. */
static int column_uuid_opt(sqlite3_stmt *st, int col, inv_uuid *out, int32_t *has)
{
	*has = sqlite3_column_type(st, col) != SQLITE_NULL;
	return column_uuid(st, col, out);
}

/* Unpack an entry's records BLOB (column `col`) into a buffer grown as
 * needed. */
static int journal_records_unpack(sqlite3_stmt *st, int col, size_t count,
                                  inv_journal_record **buf, size_t *cap)
{
	const unsigned char *p = sqlite3_column_blob(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	size_t i;
	int err;

	if ((err = pack_check(p, len, count)))
		return err;
	if (count > *cap) {
		inv_journal_record *nbuf = realloc(*buf, count * sizeof(*nbuf));

		if (!nbuf)
			return sq_error(INV_ENOMEM, "out of memory reading the journal");
		*buf = nbuf;
		*cap = count;
	}
	for (i = 0; i < count; i++)
		unpack_record(p + PACK_HEADER + i * PACK_RECORD, &(*buf)[i]);
	return 0;
}

static int sq_journal_read(void *txn, const inv_uuid *org, int64_t after, size_t limit,
                           inv_journal_entry_record_fn fn, void *payload)
{
	sq_conn *in = txn;
	inv_journal_record *records = NULL;
	size_t cap = 0;
	sqlite3_stmt *st;
	int64_t num, base;
	int rc, err = txn_check(in);

	if (err || (err = journal_num(in, org, 0, &num)) < 0)
		return err;
	if (err == 0 || after >= JOURNAL_SEQ_MAX)
		return 0; /* no entries, or none after */
	if ((err = stmt_acquire(in, ST_ENTRY_READ, &st)))
		return err;
	base = num << JOURNAL_SEQ_BITS;
	sqlite3_bind_int64(st, 1, base + (after < 0 ? -1 : after));
	sqlite3_bind_int64(st, 2, base + JOURNAL_SEQ_MAX);
	sqlite3_bind_int64(st, 3, limit == 0 || limit > INT64_MAX ? -1 : (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		inv_journal_entry_record e;
		sqlite3_int64 count;

		memset(&e, 0, sizeof(e));
		e.sequence = sqlite3_column_int64(st, 0) - base;
		e.time = sqlite3_column_int64(st, 1);
		if ((err = column_uuid_opt(st, 2, &e.external_uuid, &e.has_external_uuid)) ||
		    (err = column_uuid_opt(st, 3, &e.user_uuid, &e.has_user_uuid)) ||
		    (err = column_uuid_opt(st, 4, &e.client_uuid, &e.has_client_uuid)))
			break;
		e.idempotency_key = (const char *)sqlite3_column_text(st, 5);
		count = sqlite3_column_int64(st, 6);
		if (count < 0 || count > PACK_MAX_RECORDS) {
			err = sq_error(INV_EFORMAT, "corrupt journal: bad record count");
			break;
		}
		e.record_count = (size_t)count;
		if ((err = journal_records_unpack(st, 7, e.record_count, &records, &cap)))
			break;
		e.records = records;
		if ((err = fn(&e, payload)))
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = sq_fail(in->db, rc, "read journal");
	stmt_release(in, ST_ENTRY_READ, st);
	free(records);
	return err;
}

static int sq_journal_trim(void *txn, const inv_uuid *org, int64_t up_to)
{
	sq_conn *in = txn;
	sqlite3_stmt *st;
	int64_t last = 0, num, base;
	int err = txn_check_write(in);

	if (err)
		return err;
	in->org_seen = 0;
	if ((err = journal_last(in, org, up_to, &last)) <= 0)
		return err; /* nothing to trim */
	/* the last entry may go: its sequence stays the organization's */
	st = in->stmt[ST_ORG_KEEP_TRIMMED];
	bind_uuid(st, 1, org);
	sqlite3_bind_int64(st, 2, last);
	if ((err = stmt_run(in, st, "trim journal")) ||
	    (err = journal_num(in, org, 0, &num)) < 0)
		return err;
	base = num << JOURNAL_SEQ_BITS;
	st = in->stmt[ST_ENTRY_TRIM];
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, base + last);
	return stmt_run(in, st, "trim journal");
}

/* ------------------------------------------------------------ migration */

/* A version 1 record column: NULL is the nil UUID. */
static int v1_uuid(sqlite3_stmt *st, int col, unsigned char *out)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (!p && n == 0) {
		memset(out, 0, 16);
		return 0;
	}
	if (n != 16)
		return sq_error(INV_EFORMAT, "corrupt row: a UUID column is not 16 bytes");
	memcpy(out, p, 16);
	return 0;
}

/* Write one entry's packed records into journal_entries_v2. */
static int v2_store(sqlite3 *db, sqlite3_stmt *upd, const void *org, int org_len,
                    sqlite3_int64 sequence, const unsigned char *pack, size_t len)
{
	int rc;

	sqlite3_bind_blob(upd, 1, pack, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(upd, 2, org, org_len, SQLITE_STATIC);
	sqlite3_bind_int64(upd, 3, sequence);
	rc = sqlite3_step(upd);
	sqlite3_reset(upd);
	return rc == SQLITE_DONE ? 0 : sq_fail(db, rc, "migrate the journal");
}

/*
 * Schema 1 -> 2: pack each entry's journal_records rows, read in key order
 * (so an entry's records arrive together, by idx), into its records BLOB;
 * then refuse the file if any entry's record count disagrees with what was
 * packed, rather than migrate a journal that lost records.
 */
static int migrate_journal_records_to_blobs(sqlite3 *db)
{
	sqlite3_stmt *sel = NULL, *upd = NULL, *chk = NULL;
	unsigned char *pack = NULL, org[16];
	size_t len = 0, cap = 0;
	sqlite3_int64 sequence = 0;
	int org_len = -1, rc, err = 0;

	rc = sqlite3_prepare_v2(db,
	        "SELECT org, sequence, kind, low, product, variant, from_location,"
	        " to_location, location, quantity, before_balance, after_balance"
	        " FROM journal_records ORDER BY org, sequence, idx", -1, &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "UPDATE journal_entries_v2 SET records = ?1"
		                        " WHERE org = ?2 AND sequence = ?3", -1, &upd, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM journal_entries_v2"
		                        " WHERE length(records) != 4 + 112 * record_count",
		                        -1, &chk, NULL);
	if (rc != SQLITE_OK)
		err = sq_fail(db, rc, "migrate the journal");
	while (!err && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const void *o = sqlite3_column_blob(sel, 0);
		int olen = sqlite3_column_bytes(sel, 0);
		sqlite3_int64 seq = sqlite3_column_int64(sel, 1);
		unsigned char *p;

		if (olen > (int)sizeof(org)) {
			err = sq_error(INV_EFORMAT, "corrupt row: a UUID column is not 16 bytes");
			break;
		}
		if (olen != org_len || memcmp(o, org, (size_t)olen) != 0 || seq != sequence) {
			if (org_len >= 0 && (err = v2_store(db, upd, org, org_len, sequence,
			                                    pack, len)))
				break;
			memcpy(org, o, (size_t)olen);
			org_len = olen;
			sequence = seq;
			len = PACK_HEADER;
		}
		if (len + PACK_RECORD > cap) {
			size_t ncap = cap ? cap * 2 : 64 * PACK_RECORD;
			unsigned char *nbuf = ncap < (size_t)INT32_MAX ? realloc(pack, ncap) : NULL;

			if (!nbuf) {
				err = sq_error(INV_ENOMEM, "out of memory migrating the journal");
				break;
			}
			pack = nbuf;
			cap = ncap;
		}
		pack_header(pack);
		p = pack + len;
		put_u32(p, (uint32_t)sqlite3_column_int(sel, 2));
		put_u32(p + 4, (uint32_t)sqlite3_column_int(sel, 3));
		if ((err = v1_uuid(sel, 4, p + 8)) || (err = v1_uuid(sel, 5, p + 24)) ||
		    (err = v1_uuid(sel, 6, p + 40)) || (err = v1_uuid(sel, 7, p + 56)) ||
		    (err = v1_uuid(sel, 8, p + 72)))
			break;
		put_u64(p + 88, (uint64_t)sqlite3_column_int64(sel, 9));
		put_u64(p + 96, (uint64_t)sqlite3_column_int64(sel, 10));
		put_u64(p + 104, (uint64_t)sqlite3_column_int64(sel, 11));
		len += PACK_RECORD;
	}
	if (!err && rc != SQLITE_DONE)
		err = sq_fail(db, rc, "migrate the journal");
	if (!err && org_len >= 0)
		err = v2_store(db, upd, org, org_len, sequence, pack, len);
	if (!err) {
		rc = sqlite3_step(chk);
		if (rc != SQLITE_ROW)
			err = sq_fail(db, rc, "migrate the journal");
		else if (sqlite3_column_int64(chk, 0) != 0)
			err = sq_error(INV_EFORMAT,
			               "corrupt journal: an entry is missing records; not migrated");
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_finalize(chk);
	free(pack);
	return err;
}

/*
 * Schema 5 -> 6: every entry's id must fit (organization number << 40) +
 * sequence; a file with a sequence outside 0 .. 2^40 - 1, or more
 * organizations than the numbers allow, is refused rather than renumbered.
 */
static int migrate_journal_check_ids(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc, err = 0;

	rc = sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM journal_entries"
	                        " WHERE sequence NOT BETWEEN 0 AND ?1),"
	                        " (SELECT coalesce(max(num), 0) FROM journal_orgs)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, JOURNAL_SEQ_MAX);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_ROW)
		err = sq_fail(db, rc, "migrate the journal");
	else if (sqlite3_column_int64(st, 0) != 0)
		err = sq_error(INV_EFORMAT, "a journal sequence outside 0 to 2^40 - 1; not migrated");
	else if (sqlite3_column_int64(st, 1) > JOURNAL_ORG_MAX)
		err = sq_error(INV_EFORMAT, "too many organizations with a journal; not migrated");
	sqlite3_finalize(st);
	return err;
}

/* ------------------------------------------------------------ idempotency */

static int sq_idempotency_get(void *txn, const inv_uuid *org, const char *key,
                              inv_idempotency_record_fn fn, void *payload)
{
	sq_conn *in = txn;
	sqlite3_stmt *st;
	int rc, err = txn_check(in);

	if (err || (err = stmt_acquire(in, ST_IDEMPOTENCY_GET, &st)))
		return err;
	bind_uuid(st, 1, org);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		inv_idempotency_record rec;
		const void *fp = sqlite3_column_blob(st, 0);

		if (sqlite3_column_bytes(st, 0) != (int)sizeof(rec.fingerprint)) {
			err = sq_error(INV_EFORMAT, "corrupt idempotency key: bad fingerprint");
		} else {
			rec.key = key;
			memcpy(rec.fingerprint, fp, sizeof(rec.fingerprint));
			rec.sequence = sqlite3_column_int64(st, 1);
			rec.result = sqlite3_column_blob(st, 2);
			rec.result_len = (size_t)sqlite3_column_bytes(st, 2);
			err = fn(&rec, payload);
		}
	} else if (rc == SQLITE_DONE) {
		err = INV_ENOTFOUND;
	} else {
		err = sq_fail(in->db, rc, "read idempotency key");
	}
	stmt_release(in, ST_IDEMPOTENCY_GET, st);
	return err;
}

static int sq_idempotency_put(void *txn, const inv_uuid *org,
                              const inv_idempotency_record *rec)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_IDEMPOTENCY_PUT];
	int err = txn_check_write(in);

	if (err)
		return err;
	if (rec->result_len > INT32_MAX)
		return sq_error(INV_ETOOBIG, "idempotency result too large");
	bind_uuid(st, 1, org);
	sqlite3_bind_text(st, 2, rec->key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, rec->fingerprint, (int)sizeof(rec->fingerprint), SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, rec->sequence);
	/* a zero-length result is still a value, never NULL */
	sqlite3_bind_blob(st, 5, rec->result_len ? rec->result : "", (int)rec->result_len,
	                  SQLITE_STATIC);
	return stmt_run(in, st, "write idempotency key");
}

/* ------------------------------------------------------------ sync state */

static int sq_sync_state_get(void *txn, const inv_uuid *org,
                             inv_sync_state_fn fn, void *payload)
{
	sq_conn *in = txn;
	sqlite3_stmt *st;
	int rc, err = txn_check(in);

	if (err || (err = stmt_acquire(in, ST_SYNC_STATE_GET, &st)))
		return err;
	bind_uuid(st, 1, org);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);

		err = fn(len ? data : "", len, payload);
	} else if (rc == SQLITE_DONE) {
		err = INV_ENOTFOUND;
	} else {
		err = sq_fail(in->db, rc, "read sync state");
	}
	stmt_release(in, ST_SYNC_STATE_GET, st);
	return err;
}

static int sq_sync_state_put(void *txn, const inv_uuid *org, const void *data, size_t len)
{
	sq_conn *in = txn;
	sqlite3_stmt *st = in->stmt[ST_SYNC_STATE_PUT];
	int err = txn_check_write(in);

	if (err)
		return err;
	if (len > INV_SYNC_STATE_MAX)
		return sq_error(INV_ETOOBIG, "sync state too large");
	if (!data && len)
		return sq_error(INV_EBACKEND, "sync state data is NULL");
	bind_uuid(st, 1, org);
	/* a zero-length record is still a value, never NULL */
	sqlite3_bind_blob(st, 2, len ? data : "", (int)len, SQLITE_STATIC);
	return stmt_run(in, st, "write sync state");
}

/* ------------------------------------------------------------ instance */

static void disconnect(sq_conn *in)
{
	int i;

	for (i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(in->stmt[i]);
		in->stmt[i] = NULL;
	}
	in->upd_bound = 0; /* the statements' bindings went with them */
	sqlite3_close(in->db);
	in->db = NULL;
	free(in->pack);
	in->pack = NULL;
	in->pack_cap = 0;
	free(in->ids);
	in->ids = NULL;
	in->ids_slots = in->ids_used = 0;
}

static void conn_free(sq_conn *c)
{
	if (!c)
		return;
	disconnect(c);
	free(c);
}

static void sq_close(void *instance)
{
	sq_store *s = instance;
	sq_conn *c;

	if (!s)
		return;
	while ((c = s->readers)) {
		s->readers = c->all;
		conn_free(c);
	}
	conn_free(s->w);
	free(s->path);
	free(s->wal_path);
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	pthread_cond_destroy(&s->company_cv);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int sq_control(void *instance, int op, void *arg)
{
	(void)instance;
	(void)arg;
	(void)op;
	return INV_ENOTFOUND;
}

static const inv_backend_ops sqlite_ops = {
	.version = INV_BACKEND_VERSION,
	.name = "sqlite",
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.org_get = sq_org_get,
	.org_put = sq_org_put,
	.location_scan = sq_location_scan,
	.location_put = sq_location_put,
	.tracking_get = sq_tracking_get,
	.tracking_put = sq_tracking_put,
	.tracking_scan = sq_tracking_scan,
	.variant_get = sq_variant_get,
	.variant_put = sq_variant_put,
	.variant_scan = sq_variant_scan,
	.low_stock_get = sq_low_stock_get,
	.low_stock_put = sq_low_stock_put,
	.low_stock_delete = sq_low_stock_delete,
	.low_stock_scan = sq_low_stock_scan,
	.journal_append = sq_journal_append,
	.journal_read = sq_journal_read,
	.journal_trim = sq_journal_trim,
	.idempotency_get = sq_idempotency_get,
	.idempotency_put = sq_idempotency_put,
	.variant_get_many = sq_variant_get_many,
	.variant_put_many = sq_variant_put_many,
	.control = sq_control,
	.sync_state_get = sq_sync_state_get,
	.sync_state_put = sq_sync_state_put,
	.commit_release = sq_commit_release,
};

/* ------------------------------------------------------------ opening */

/* Run one statement of the open sequence that returns at most an integer. */
static int pragma_int(sqlite3 *db, const char *sql, int *out, const char *what)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sq_fail(db, rc, what);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out)
			*out = sqlite3_column_int(st, 0);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		int err = sq_fail(db, rc, what);

		sqlite3_finalize(st);
		return err;
	}
	sqlite3_finalize(st);
	return 0;
}

static int exec(sqlite3 *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail(db, rc, what);
}

/* Milliseconds on a monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Whether a SQLITE_BUSY that SQLite returned without consulting the busy
 * handler may be retried: true until `deadline` (a now_ms() time), after a
 * short sleep that grows with `*tries`.  SQLite skips the handler where
 * waiting could deadlock inside one call - switching a file another process
 * is creating to WAL, the first read of a WAL that another connection is
 * still initializing or recovering (SQLITE_BUSY_RECOVERY) - but here the
 * whole statement is repeated from scratch, which cannot deadlock.
 */
static int busy_again(int rc, int64_t deadline, int *tries)
{
	struct timespec ts;
	int ms;

	if ((rc & 0xff) != SQLITE_BUSY || now_ms() >= deadline)
		return 0;
	ms = *tries < 5 ? 1 << *tries : 20;
	(*tries)++;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)ms * 1000000L;
	nanosleep(&ts, NULL);
	return 1;
}

/* exec(), retrying a busy file until the busy timeout. */
static int exec_busy(sqlite3 *db, const char *sql, const char *what, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int tries = 0, rc;

	do
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	while (rc != SQLITE_OK && busy_again(rc, deadline, &tries));
	return rc == SQLITE_OK ? 0 : sq_fail(db, rc, what);
}

/*
 * The connection's page cache and memory map, and temporary tables and
 * indexes (a journal read's ORDER BY, a migration) in memory: the same
 * settings for every connection of an instance, and for the bench's
 * hand-written baseline.
 */
static int tune(sqlite3 *db, const inv_sqlite_options *opts)
{
	char sql[160];

	/* 2,000 KiB is SQLite's own default */
	snprintf(sql, sizeof(sql), "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -%d;"
	         " PRAGMA mmap_size = %lld", opts->cache_kib ? opts->cache_kib : 2000,
	         (long long)opts->mmap_mib * 1024 * 1024);
	return exec(db, sql, "set the page cache and memory map");
}

enum file_kind { FILE_EMPTY, FILE_OURS };

/*
 * Classify the database with reads only.  0 with *kind and *version set for
 * a file we may use; INV_EFORMAT for one we must leave alone.
 */
static int classify(sqlite3 *db, enum file_kind *kind, int *version)
{
	int app_id = 0, objects = 0, err;

	err = pragma_int(db, "PRAGMA application_id", &app_id, "read the file header");
	if (!err)
		err = pragma_int(db, "PRAGMA user_version", version, "read the file header");
	if (!err)
		err = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &objects,
		                 "read the schema");
	if (err == INV_EFORMAT)
		return sq_error(INV_EFORMAT, "not a database file, or a corrupt one");
	if (err)
		return err;
	if (app_id == 0 && *version == 0 && objects == 0) {
		*kind = FILE_EMPTY;
		return 0;
	}
	if (app_id != SQ_APPLICATION_ID)
		return sq_error(INV_EFORMAT, "not a libzinv database (foreign application_id)");
	if (*version > SQ_SCHEMA_VERSION) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		         "schema version %d is newer than this library's %d", *version,
		         SQ_SCHEMA_VERSION);
		return sq_error(INV_EFORMAT, msg);
	}
	*kind = FILE_OURS;
	return 0;
}

/*
 * Bring the schema to SQ_SCHEMA_VERSION inside one write transaction,
 * re-reading the version under the lock: another process may have created
 * or migrated the file since classify() looked.
 */
static int migrate(sqlite3 *db)
{
	enum file_kind kind;
	int version = 0, err;
	char sql[96];

	if ((err = exec(db, "BEGIN IMMEDIATE", "lock the database to create the schema")))
		return err;
	err = classify(db, &kind, &version);
	if (!err && version == SQ_SCHEMA_VERSION) {
		/* another process got there first */
		exec(db, "ROLLBACK", "release the lock");
		return 0;
	}
	for (; !err && version < SQ_SCHEMA_VERSION; version++) {
		const struct sq_migration *m = &migration_steps[version];

		err = exec(db, m->before, "create or migrate the schema");
		if (!err && m->convert)
			err = m->convert(db);
		if (!err && m->after)
			err = exec(db, m->after, "create or migrate the schema");
	}
	if (!err) {
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d",
		         SQ_APPLICATION_ID, SQ_SCHEMA_VERSION);
		err = exec(db, sql, "write the schema version");
	}
	if (!err)
		err = exec(db, "COMMIT", "commit the schema");
	if (err && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

/*
 * The caller's options as a full current struct: members a version-1
 * caller's struct does not have take the version-1 behaviour (SQLite's
 * page cache, no memory map), so an old program runs as it did.
 */
static int options_check(const inv_sqlite_options *in, inv_sqlite_options *opts)
{
	static const inv_sqlite_options defaults = INV_SQLITE_OPTIONS_INIT;

	if (in->version < 1 || in->version > INV_SQLITE_OPTIONS_VERSION)
		return sq_error(INV_EVERSION, "unsupported inv_sqlite_options version");
	*opts = defaults;
	if (in->version == 1) {
		memcpy(opts, in, offsetof(inv_sqlite_options, cache_kib));
		opts->cache_kib = 0;
		opts->mmap_mib = 0;
		opts->group_wait_us = 0;
		opts->reserved = 0;
	} else {
		*opts = *in;
	}
	if (opts->cache_kib < 0)
		return sq_error(INV_EINVAL, "cache_kib must not be negative");
	if (opts->mmap_mib < 0)
		return sq_error(INV_EINVAL, "mmap_mib must not be negative");
	if (opts->group_wait_us < 0 || opts->group_wait_us > 1000000)
		return sq_error(INV_EINVAL, "group_wait_us must be 0 to 1,000,000");
	if (opts->reserved != 0)
		return sq_error(INV_EINVAL, "reserved must be 0");
	if (opts->sync != INV_SQLITE_SYNC_FULL && opts->sync != INV_SQLITE_SYNC_NORMAL)
		return sq_error(INV_EINVAL, "sync must be INV_SQLITE_SYNC_FULL or _NORMAL");
	if (opts->busy_timeout_ms < 0)
		return sq_error(INV_EINVAL, "busy_timeout_ms must not be negative");
	return 0;
}

static int conn_prepare(sq_conn *in, const inv_sqlite_options *opts);

static int instance_prepare(sq_conn *in, const inv_sqlite_options *opts)
{
	enum file_kind kind;
	int version = 0, err, tries = 0;
	int64_t deadline;
	int is_memory = strcmp(sqlite3_db_filename(in->db, "main"), "") == 0;

	if (!opts->read_only && sqlite3_db_readonly(in->db, "main") == 1)
		return sq_error(INV_EREADONLY, "the database file is not writable "
		                "(open it with read_only set to read it)");
	/* One read transaction, so that the header and the schema are read
	 * from one snapshot even while another process creates the schema;
	 * repeated while the file is busy in a way the busy handler skips. */
	deadline = now_ms() + opts->busy_timeout_ms;
	do {
		if ((err = exec(in->db, "BEGIN", "read the file header")))
			return err;
		err = classify(in->db, &kind, &version);
		if (!sqlite3_get_autocommit(in->db))
			sqlite3_exec(in->db, "COMMIT", NULL, NULL, NULL);
	} while (err == INV_EBUSY && busy_again(SQLITE_BUSY, deadline, &tries));
	if (err)
		return err;
	/* Before any write, so that creating the schema already uses it. */
	if ((err = exec(in->db, opts->sync == INV_SQLITE_SYNC_NORMAL ?
	                "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
	                "set the sync mode")) ||
	    (err = tune(in->db, opts)))
		return err;
	if (opts->read_only) {
		if (kind == FILE_EMPTY)
			return sq_error(INV_EFORMAT, "not a libzinv database (empty file)");
		if (version != SQ_SCHEMA_VERSION)
			return sq_error(INV_EFORMAT, "an older schema that a read-only open "
			                "cannot migrate");
	} else {
		/* WAL before the schema, so that even the first commit is a WAL
		 * append; on a file already in WAL mode this writes nothing. */
		if (!is_memory && (err = exec_busy(in->db, "PRAGMA journal_mode = WAL",
		                                   "switch to WAL mode",
		                                   opts->busy_timeout_ms)))
			return err;
		if (version != SQ_SCHEMA_VERSION && (err = migrate(in->db)))
			return err;
	}
	return conn_prepare(in, opts);
}

/* Prepare every statement, retrying a busy schema read like the open. */
static int conn_prepare(sq_conn *in, const inv_sqlite_options *opts)
{
	int64_t deadline = now_ms() + opts->busy_timeout_ms;
	int i, rc, tries = 0;

	for (i = 0; i < ST_COUNT; i++) {
		do
			rc = sqlite3_prepare_v3(in->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
			                        &in->stmt[i], NULL);
		while (rc != SQLITE_OK && busy_again(rc, deadline, &tries));
		if (rc != SQLITE_OK)
			return sq_fail(in->db, rc, "prepare statements");
	}
	return 0;
}

int inv_sqlite_options_init(inv_sqlite_options *opts, uint32_t version)
{
	static const inv_sqlite_options defaults = INV_SQLITE_OPTIONS_INIT;

	if (!opts)
		return sq_error(INV_EINVAL, "options: NULL");
	if (version < 1 || version > INV_SQLITE_OPTIONS_VERSION)
		return sq_error(INV_EVERSION, "unsupported inv_sqlite_options version");
	if (version == 1) {
		/* only the members a version-1 struct has */
		memcpy(opts, &defaults, offsetof(inv_sqlite_options, cache_kib));
		opts->version = 1;
		return 0;
	}
	*opts = defaults;
	return 0;
}

/*
 * "file:" URI of `path` with immutable=1, for a read-only open that cannot
 * create the WAL index (read-only media or directory).
 */
static char *immutable_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *uri = malloc(3 * n + 32), *p;

	if (!uri)
		return NULL;
	/* an absolute path goes after an empty authority ("file:///..."), so
	 * that a path starting with "//" is never read as a host name */
	p = uri + sprintf(uri, path[0] == '/' ? "file://" : "file:");
	for (; *path; path++) {
		unsigned char c = (unsigned char)*path;

		if (c == '%' || c == '?' || c == '#' || c <= ' ' || c >= 0x7f) {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	strcpy(p, "?immutable=1");
	return uri;
}

/*
 * A file with no write permission bits is meant to stay as it is, even for
 * a process (root) whom the kernel would let write it anyway.
 */
static int write_protected(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0;
}

/* Open a connection to `path` with the instance's settings. */
static int conn_connect(sq_conn *in, const char *path, const inv_sqlite_options *opts)
{
	/* NOMUTEX: the store hands a connection to one thread at a time. */
	int flags = (in->read_only ? SQLITE_OPEN_READONLY
	                           : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
	            SQLITE_OPEN_NOMUTEX;
	int rc;

	if (strncmp(path, "file:", 5) == 0)
		flags |= SQLITE_OPEN_URI;
	else if (!in->read_only && write_protected(path))
		return sq_error(INV_EREADONLY, "the database file is not writable "
		                "(no write permission; open it with read_only set to read it)");
	rc = sqlite3_open_v2(path, &in->db, flags, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(in->db, rc, "open the database");
	sqlite3_extended_result_codes(in->db, 1);
	sqlite3_busy_timeout(in->db, opts->busy_timeout_ms);
	return 0;
}

static int db_connect(sq_conn *in, const char *path, const inv_sqlite_options *opts)
{
	int err = conn_connect(in, path, opts);

	return err ? err : instance_prepare(in, opts);
}

/* A new connection for read transactions, on the file `w` opened. */
static int reader_open(sq_store *s, sq_conn **out)
{
	sq_conn *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return sq_error(INV_ENOMEM, "out of memory");
	c->store = s;
	c->read_only = s->read_only;
	if ((err = conn_connect(c, s->path, &s->opts)) || (err = tune(c->db, &s->opts)) ||
	    (err = conn_prepare(c, &s->opts))) {
		conn_free(c);
		return err;
	}
	pthread_mutex_lock(&s->mu);
	c->all = s->readers;
	s->readers = c;
	s->reader_count++;
	pthread_mutex_unlock(&s->mu);
	*out = c;
	return 0;
}

/* Sync FULL on a file in WAL mode: commit without an fsync on `w` and
 * fsync the WAL outside the write lock (sq_store). */
static int defer_sync(sq_store *s)
{
	sqlite3 *db = s->w->db;
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(db, "main"));
	sqlite3_stmt *st;
	int wal_mode = 0, err;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) != SQLITE_OK)
		return sq_fail(db, sqlite3_errcode(db), "read the journal mode");
	if (sqlite3_step(st) == SQLITE_ROW)
		wal_mode = sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal_mode || !wal || !*wal)
		return 0; /* FULL as SQLite does it */
	if (!(s->wal_path = strdup(wal)))
		return sq_error(INV_ENOMEM, "out of memory");
	if ((err = exec(db, "PRAGMA synchronous = NORMAL", "set the sync mode")))
		return err;
	s->defer_sync = 1;
	return 0;
}

int inv_sqlite_backend_open(const inv_backend_ops **ops, void **instance,
                            const char *path, const inv_sqlite_options *opts)
{
	static const inv_sqlite_options defaults = INV_SQLITE_OPTIONS_INIT;
	sq_store *s;
	sq_conn *in;
	int err;

	if (!ops || !instance || !path)
		return sq_error(INV_EINVAL, "open: NULL argument");
	s = calloc(1, sizeof(*s));
	if (!s)
		return sq_error(INV_ENOMEM, "out of memory");
	if ((err = options_check(opts ? opts : &defaults, &s->opts))) {
		free(s);
		return err;
	}
	opts = &s->opts;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return sq_error(INV_ENOMEM, "cannot create the store's mutex");
	}
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return sq_error(INV_ENOMEM, "cannot create the store's condition");
	}
	if (pthread_cond_init(&s->company_cv, NULL) != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return sq_error(INV_ENOMEM, "cannot create the store's condition");
	}
	s->wal_fd = -1;
	s->group_tail = &s->group;
	s->durable_tail = &s->durable;
	s->read_only = opts->read_only ? 1 : 0;
	s->w = in = calloc(1, sizeof(*in));
	s->path = strdup(path);
	if (!in || !s->path) {
		sq_close(s);
		return sq_error(INV_ENOMEM, "out of memory");
	}
	in->store = s;
	in->read_only = s->read_only;
	err = db_connect(in, path, opts);
	if (err == INV_EREADONLY && in->read_only && strncmp(path, "file:", 5) != 0) {
		/* A WAL database needs its -shm index even to be read; where it
		 * cannot be created, read the file as immutable instead. */
		char *uri = immutable_uri(path);

		disconnect(in);
		err = uri ? db_connect(in, uri, opts) : sq_error(INV_ENOMEM, "out of memory");
		if (!err) {
			free(s->path);
			s->path = uri;
			uri = NULL;
		}
		free(uri);
	}
	if (err) {
		sq_close(s);
		return err;
	}
	/* A private in-memory database is one connection's alone. */
	s->shared_reads = strcmp(sqlite3_db_filename(in->db, "main"), "") != 0;
	if (s->shared_reads && !s->read_only && opts->sync == INV_SQLITE_SYNC_FULL &&
	    (err = defer_sync(s))) {
		sq_close(s);
		return err;
	}
	*ops = &sqlite_ops;
	*instance = s;
	return 0;
}

int inv_store_open_sqlite(inv_store **out, const char *path,
                          const inv_sqlite_options *sqlite_opts,
                          const inv_store_options *store_opts)
{
	const inv_backend_ops *ops;
	void *instance;
	int err;

	if (!out)
		return sq_error(INV_EINVAL, "open: NULL argument");
	if ((err = inv_sqlite_backend_open(&ops, &instance, path, sqlite_opts)))
		return err;
	if ((err = inv_store_open(out, ops, instance, store_opts)))
		ops->close(instance);
	return err;
}
