// fused_tile.h: what the tiled fused kernels (attention.c, relation.c) share: register-blocked
// small matrix products on the ISA's vector registers, written with GCC's vector extensions so that
// one source serves every ISA build (see the Makefile), and the per-thread scratch buffers.
//
// The products all have one form, "broadcast times vector":
//
//     out[r][l] (= or +=) sum over c < C of  A[c * ca + r * ra]  *  B[c * ldb + l]
//
// for rows r < nr and lanes l < nvec * NL (NL = the lanes of one vector). One scalar of A is
// broadcast and multiplied into a run of vectors of B, accumulating an (R rows x NV vectors) block
// of out in registers across the whole contraction, then stored once. Two layouts of A occur:
// "columns" (ra = 1, ca = any: A's rows lie next to each other, e.g. a packed Kᵀ, or V itself when
// r runs over features) and "tile rows" (ra = TILE_M, ca = 1: A is a score tile stored [row][lane]).
//
// Determinism: a block's sum runs over c in order, one FMA per step, in registers that start at
// zero; in "add" mode the finished block is then added to out with one addition per element. So a
// result built up over several calls (gradients summed over query tiles) depends only on the order
// of the calls, never on which thread made them.
//
// Vectors are 256-bit with AVX-512 (32 registers) and AVX2 (16), 128-bit in the generic build. On
// the reference machine (Zen 4, which splits 512-bit operations in two) 256-bit vectors give the
// same FMA throughput, twice the broadcast-to-FMA ratio budget, and finer granularity for odd sizes.
#ifndef ISTHMUS_FUSED_TILE_H
#define ISTHMUS_FUSED_TILE_H

#include "kernels.h"
#include <stdlib.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define FT_BYTES 32
#define FT_ACC 24        // accumulator registers a block may use (of 32)
#elif defined(__AVX2__)
#define FT_BYTES 32
#define FT_ACC 12        // of 16
#else
#define FT_BYTES 16
#define FT_ACC 12        // of 16 (SSE2)
#endif

// A query (or relation row) tile is FT_QV vectors of lanes: 32 float32 rows with 256-bit vectors
// (a whole number of the elementwise vectors of fused_tile_t.h).
#define FT_QV 4

// Scratch memory: 64-byte aligned, sizes rounded up to whole cache lines, zeroed (so that the lanes
// past a partial tile, which the elementwise passes compute and ignore, hold plain numbers).
static inline void *ft_alloc(size_t bytes) {
    size_t n = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p) memset(p, 0, n ? n : 64);
    return p;
}

static inline int64_t ft_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static inline int64_t ft_min(int64_t a, int64_t b) { return a < b ? a : b; }

// The log-probability floor of the token-relation loss: ln(1e-30) (ReferenceFused.LOG_FLOOR).
#define FT_LOG_FLOOR (-69.07755278982137)

#endif

// ---- the per-type part (this header is included once per element type) -------------------------
//
// The includer defines T (float or double) and SFX (f32 or f64) and includes fused_tile_t.h.
