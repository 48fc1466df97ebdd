/*
 * sim.h - the deterministic simulator: libzinv against the reference model.
 *
 * The simulator drives any backend through a factory, so a backend author
 * can run it against their own ops table (see tests/sim/README.md).
 */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stdint.h>

#include <zinv.h>
#include <zinv/backend.h>

/*
 * Make a backend instance.  `fresh` 1: start empty (a durable backend
 * removes what an earlier run left); 0: reopen what the last instance wrote
 * (only asked of durable backends).  Returns 0 or an INV_E* code.
 */
typedef int (*sim_factory_fn)(const inv_backend_ops **ops, void **instance,
                              int fresh, void *ctx);

typedef struct sim_backend {
	const char *name;
	sim_factory_fn open;
	void *ctx;
	int durable;                  /* state survives close and reopen */
} sim_backend;

typedef struct sim_config {
	uint64_t seed;
	long steps;
	const sim_backend *backend;
	/* Crash runs replay the acknowledged steps here (memory) to rebuild
	 * the expected state; NULL disables crash runs. */
	const sim_backend *replay_backend;
	uint32_t faults_per_million;  /* injected failures per backend op */
	int crash;                    /* 1: crash-and-recover run (durable only),
	                                 _exit() inside a chosen backend operation;
	                                 2: SIGKILL at a random moment instead */
	int verbose;                  /* print every step */
	int two_stores;               /* durable backends, no crash: two stores
	                                 on one database, calls alternate */
} sim_config;

typedef struct sim_stats {
	long seeds, steps;
	uint64_t backend_ops;
	uint64_t faults;              /* injected backend failures */
	uint64_t faulted_calls;       /* API calls that saw one */
	uint64_t crashes;             /* processes killed mid-run */
	uint64_t crash_unacked_survived; /* in-flight step found committed */
	uint64_t calls_ok, calls_failed;
	uint64_t by_code[16];         /* calls by -return code (0: OK) */
	uint64_t changes;             /* changes submitted in batches */
	uint64_t events;
	uint64_t events_by_type[5];   /* by inv_event_type */
	uint64_t replays;             /* idempotent replays checked */
	uint64_t dry_runs;
	uint64_t reopens;
} sim_stats;

/* Run one seed; 0 when libzinv matched the model throughout, 1 on the
 * first divergence (reported on stderr with the replay command). */
int sim_run(const sim_config *cfg, sim_stats *stats);

/* Install handlers that name the seed and step when the process dies of a
 * signal (a crash in libzinv), then die of it as before. */
void sim_report_fatal_signals(void);

#endif /* SIM_SIM_H */
