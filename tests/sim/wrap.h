/*
 * wrap.h - a pass-through wrapper around any backend ops table that counts
 * operations, fails chosen ones (fault injection) and can _exit() the
 * process at the k-th one (a crash in the middle of a batch).
 *
 * The decisions come from the simulator's own PRNG, so a seed replays the
 * same faults and the same crash point.
 */
#ifndef SIM_WRAP_H
#define SIM_WRAP_H

#include <stdint.h>

#include <zinv/backend.h>

#include "prng.h"

typedef struct sim_wrap sim_wrap;

/* Wrap (ops, instance); on success *out_ops and *out_instance replace them and
 * the wrapper owns the inner instance (closed with it). */
int sim_wrap_new(sim_wrap **out, const inv_backend_ops **out_ops, void **out_instance,
                 const inv_backend_ops *ops, void *instance);

/* Fail each operation with probability per_million / 10^6 while armed. */
void sim_wrap_set_faults(sim_wrap *w, sim_prng *prng, uint32_t per_million);
void sim_wrap_arm(sim_wrap *w, int armed);

/* _exit(code) instead of running operation number `at` (counted from now);
 * 0 disables. */
void sim_wrap_crash_at(sim_wrap *w, uint64_t at, int code);

/* Faults fired since the last call (and the code of the first one). */
unsigned sim_wrap_take_faults(sim_wrap *w, int *first_code);

uint64_t sim_wrap_ops(const sim_wrap *w);
uint64_t sim_wrap_faults_total(const sim_wrap *w);

#endif /* SIM_WRAP_H */
