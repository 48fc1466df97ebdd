/*
 * sync_sim.h - the sync object simulated against an upstream store over a
 * faulty link (sync_sim.c).
 */
#ifndef SIM_SYNC_SIM_H
#define SIM_SYNC_SIM_H

#include <stdint.h>

typedef struct sim_sync_stats {
	uint64_t seeds, requests, drops, errors, duplicates, lost_answers;
	uint64_t rejections, till_moves, reopens;
} sim_sync_stats;

/* Run one seed of `steps` actions; 0 when every invariant held. */
int sim_sync_run(uint64_t seed, long steps, sim_sync_stats *st);

#endif /* SIM_SYNC_SIM_H */
