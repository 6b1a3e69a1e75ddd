/* Native CPU Sinkhorn kernels: the solver of _sinkhorn_solver.py, its unrolled reverse pass and
   the implicit gradient of _sinkhorn_implicit.py, one batch item per OpenMP thread.

   Plain C without torch headers, so it compiles in about a second at first use (see
   __init__.py). Every function exists twice, for float (suffix _f32) and double (_f64):
   sinkhorn_impl.h is included once per precision. Arrays are contiguous, row-major, batch
   first; a and b (row and column masses) may be NULL (all ones). The functions return 0, or
   NATIVE_NO_MEMORY when a scratch buffer could not be allocated. */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NATIVE_ABI 2
#define NATIVE_NO_MEMORY 1
#define CHECK_EVERY 10
#define ROWS 4 /* rows per block in the loops over a matrix */
#define VECTOR_BYTES 64 /* the kernel's rows are padded to whole vectors of this size */
#define MOST_VECTORS 8  /* vectors of sums that combine keeps in registers */
#define OWED_BYTES (256 << 10) /* the reverse pass adds its rank-one terms to dx before they
                                   take more: with the kernel they stay in a core's L2 cache */

int sinkhorn_abi(void) { return NATIVE_ABI; }

/* bytes of scratch starting on a vector boundary (freed with free), so that the kernel's padded
   rows are whole aligned vectors: a load never spans two cache lines */
static void *vector_aligned(size_t bytes)
{
    return aligned_alloc(VECTOR_BYTES, (bytes + VECTOR_BYTES - 1) / VECTOR_BYTES * VECTOR_BYTES);
}

/* Solve S y = rhs (n x n, row-major) in place by LU with partial pivoting: rhs becomes y. */
static void lu_solve(double *S, double *rhs, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        int64_t p = k;
        for (int64_t i = k + 1; i < n; i++)
            if (fabs(S[i * n + k]) > fabs(S[p * n + k]))
                p = i;
        if (p != k) {
            for (int64_t j = 0; j < n; j++) {
                double t = S[k * n + j];
                S[k * n + j] = S[p * n + j];
                S[p * n + j] = t;
            }
            double t = rhs[k];
            rhs[k] = rhs[p];
            rhs[p] = t;
        }
        double pivot = S[k * n + k];
        for (int64_t i = k + 1; i < n; i++) {
            double l = S[i * n + k] / pivot;
            if (l == 0.0)
                continue;
            for (int64_t j = k + 1; j < n; j++)
                S[i * n + j] -= l * S[k * n + j];
            rhs[i] -= l * rhs[k];
        }
    }
    for (int64_t k = n - 1; k >= 0; k--) {
        double s = rhs[k];
        for (int64_t j = k + 1; j < n; j++)
            s -= S[k * n + j] * rhs[j];
        rhs[k] = s / S[k * n + k];
    }
}

/* The item-level functions are compiled for AVX-512 and AVX2 machines too, chosen at load time
   (GCC's function multi-versioning); elsewhere, for the compiler's default target only. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && \
    defined(__ELF__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

/* 1/n! for n = 0 .. 13: the Taylor coefficients of the kernels' exp */
static const double inverse_factorial[] = {
    1.0,          1.0,           0.5,            1.0 / 6,        1.0 / 24,
    1.0 / 120,    1.0 / 720,     1.0 / 5040,     1.0 / 40320,    1.0 / 362880,
    1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800};

/* Per precision: the type, names, log, and the exp's integer type, exponent layout, last finite
   argument it computes (a bound below the true overflow, which the kernels' exponents, near or
   below 0, never approach), ln 2 in two parts and Taylor degree (within 2 ulp of the C
   library's exp). */
#define REAL double
#define FN(name) name##_f64
#define LOG log
#define BITS int64_t
#define MANTISSA 52
#define BIAS 1023
#define EXP_TOP 709.0
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define DEGREE 13
#include "sinkhorn_impl.h"
#undef REAL
#undef FN
#undef LOG
#undef BITS
#undef MANTISSA
#undef BIAS
#undef EXP_TOP
#undef LN2_HI
#undef LN2_LO
#undef DEGREE

#define REAL float
#define FN(name) name##_f32
#define LOG logf
#define BITS int32_t
#define MANTISSA 23
#define BIAS 127
#define EXP_TOP 88.0f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define DEGREE 7
#include "sinkhorn_impl.h"
