/*
 * prng.h - the simulator's own random numbers (xoshiro256** seeded by
 * splitmix64).  rand() is never used: its sequence differs between C
 * libraries, and a seed must replay the same run everywhere.
 */
#ifndef SIM_PRNG_H
#define SIM_PRNG_H

#include <stdint.h>

typedef struct sim_prng {
	uint64_t s[4];
} sim_prng;

static inline uint64_t sim_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static inline void sim_prng_seed(sim_prng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = sim_splitmix64(&seed);
}

static inline uint64_t sim_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t sim_next(sim_prng *r)
{
	uint64_t *s = r->s;
	uint64_t result = sim_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = sim_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n); n > 0.  The tiny modulo bias does not matter here. */
static inline uint64_t sim_below(sim_prng *r, uint64_t n)
{
	return sim_next(r) % n;
}

/* Uniform in [lo, hi]. */
static inline int64_t sim_range(sim_prng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)sim_below(r, (uint64_t)(hi - lo) + 1);
}

/* 1 with probability pct/100. */
static inline int sim_chance(sim_prng *r, unsigned pct)
{
	return sim_below(r, 100) < pct;
}

#endif /* SIM_PRNG_H */
