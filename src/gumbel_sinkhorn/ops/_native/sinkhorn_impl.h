/* One precision (REAL, FN, LOG, and the exp's BITS ... DEGREE) of the kernels; included by
   sinkhorn.c. Per item: x (R, M) scores, a (R) / b (M) masses (NULL: all ones). The scaling
   form, the chunks, the base refreshes and the log-domain redos are those of
   _sinkhorn_solver.solve, decided per item instead of per batch. An item's base kernel K has rows
   padded to whole vectors; where K and its transpose fit in TRANSPOSED_UP_TO bytes both are kept
   and the products K v and K^T u are sums of rows (combine: sums in registers, no horizontal
   sums); else loops over rows take them four at a time (ROWS), so that each pass over a column
   vector serves four rows. */

/* exp(t) in a form compilers vectorize: t = k ln2 + r (|r| <= ln2 / 2), e^r by its Taylor
   polynomial, 2^k from the exponent bits. Exactly 0 for t <= floor (floor is at least the log of
   the smallest normal number + 0.5, so 2^k stays normal: no subnormal products, as in
   _exp.exp_), inf above EXP_TOP. */
static inline REAL FN(exp)(REAL t, REAL floor)
{
    const REAL magic = (REAL)1.5 * ((BITS)1 << MANTISSA); /* adding it rounds to integers */
    REAL c = t > floor ? t : floor;
    c = c < EXP_TOP ? c : EXP_TOP;
    REAL shifted = c * (REAL)1.4426950408889634074 + magic, k = shifted - magic;
    REAL r = (c - k * LN2_HI) - k * LN2_LO;
    REAL p = (REAL)inverse_factorial[DEGREE];
#pragma GCC unroll 16
    for (int n = DEGREE - 1; n >= 0; n--)
        p = p * r + (REAL)inverse_factorial[n];
    BITS bits, magic_bits;
    memcpy(&bits, &shifted, sizeof bits);
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    bits = (bits - magic_bits + BIAS) << MANTISSA;
    REAL scale;
    memcpy(&scale, &bits, sizeof scale);
    REAL e = t <= EXP_TOP ? p * scale : INFINITY;
    return t > floor ? e : 0;
}

/* An item's masses and their logs (ones and zeros where the problem has none) */
typedef struct {
    const REAL *a, *b, *log_a, *log_b;
} FN(Masses);

/* The masses of an item in 2R + 2M of scratch. */
static FN(Masses) FN(masses)(const REAL *a, const REAL *b, int64_t R, int64_t M, REAL *scratch)
{
    REAL *ma = scratch, *mb = ma + R, *la = mb + M, *lb = la + R;
    for (int64_t i = 0; i < R; i++) {
        ma[i] = a ? a[i] : (REAL)1;
        la[i] = LOG(ma[i]);
    }
    for (int64_t j = 0; j < M; j++) {
        mb[j] = b ? b[j] : (REAL)1;
        lb[j] = LOG(mb[j]);
    }
    return (FN(Masses)){ma, mb, la, lb};
}

/* Rows i .. i + ROWS - 1 of the matrix A of R rows (stride ld) into rows, row R - 1 again past
   the last one (weighted by 0 or discarded); returns how many are real. */
static inline int64_t FN(block)(REAL *A, int64_t R, int64_t ld, int64_t i, REAL **rows)
{
    int64_t n = R - i < ROWS ? R - i : ROWS;
    for (int64_t k = 0; k < ROWS; k++)
        rows[k] = A + (i + (k < n ? k : n - 1)) * ld;
    return n;
}

/* n rounded up to whole vectors: the row stride of the kernel matrices */
static inline int64_t FN(padded)(int64_t n)
{
    const int64_t lanes = VECTOR_BYTES / sizeof(REAL);
    return (n + lanes - 1) / lanes * lanes;
}

/* A vector of VECTOR_BYTES (the compiler maps it to the target's registers), unaligned access */
typedef REAL FN(vector) __attribute__((vector_size(VECTOR_BYTES), aligned(sizeof(REAL))));

/* out[0 .. n vectors) = sum_i w[i] A[i, 0 .. n vectors), the n sums held in registers */
static inline __attribute__((always_inline)) void FN(combine_tile)(const REAL *A, int64_t rows,
                                                                   int64_t ld, const REAL *w,
                                                                   REAL *out, const int n)
{
    FN(vector) sums[MOST_VECTORS] = {{0}};
    for (int64_t i = 0; i < rows; i++) {
        const FN(vector) *row = (const FN(vector) *)(A + i * ld);
        const REAL c = w[i];
#pragma GCC unroll 8
        for (int q = 0; q < n; q++)
            sums[q] += c * row[q];
    }
#pragma GCC unroll 8
    for (int q = 0; q < n; q++)
        ((FN(vector) *)out)[q] = sums[q];
}

/* out[0 .. ld) = sum_i w[i] A[i, :] over the rows of A (stride ld, whole vectors): no horizontal
   sums, the columns in equal tiles of at most MOST_VECTORS vectors. Inlined into its callers,
   it is compiled for their instruction sets (VECTOR_CLONES). */
static inline __attribute__((always_inline)) void FN(combine)(const REAL *A, int64_t rows, int64_t ld, const REAL *w, REAL *out)
{
    const int64_t lanes = VECTOR_BYTES / sizeof(REAL), vectors = ld / lanes;
    const int64_t tiles = (vectors + MOST_VECTORS - 1) / MOST_VECTORS;
    for (int64_t t = 0, n = 0, j = 0; t < tiles; t++, j += n * lanes) {
        n = vectors / tiles + (t < vectors % tiles);
        const REAL *a = A + j;
        switch (n) { /* constant counts: unrolled, in registers */
        case 8: FN(combine_tile)(a, rows, ld, w, out + j, 8); break;
        case 7: FN(combine_tile)(a, rows, ld, w, out + j, 7); break;
        case 6: FN(combine_tile)(a, rows, ld, w, out + j, 6); break;
        case 5: FN(combine_tile)(a, rows, ld, w, out + j, 5); break;
        case 4: FN(combine_tile)(a, rows, ld, w, out + j, 4); break;
        case 3: FN(combine_tile)(a, rows, ld, w, out + j, 3); break;
        case 2: FN(combine_tile)(a, rows, ld, w, out + j, 2); break;
        default: FN(combine_tile)(a, rows, ld, w, out + j, 1); break;
        }
    }
}

/* A base kernel K (R, M) in rows of stride ld_M (padding 0), and its transpose KT in rows of
   stride ld_R when the two fit in the budget (else NULL): with both, K v and K^T u are sums of
   rows (combine). */
typedef struct {
    REAL *K, *KT;
    int64_t ld_M, ld_R;
} FN(Kernel);

/* The products of ROWS rows (of length M) with vec, into out */
static inline void FN(dots)(REAL *const *rows, const REAL *vec, int64_t M, REAL *out)
{
    const REAL *K0 = rows[0], *K1 = rows[1], *K2 = rows[2], *K3 = rows[3];
    REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t j = 0; j < M; j++) {
        s0 += K0[j] * vec[j];
        s1 += K1[j] * vec[j];
        s2 += K2[j] * vec[j];
        s3 += K3[j] * vec[j];
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
}

/* out += sum_k weight[k] rows[k] over ROWS rows (of length M) */
static inline void FN(add_rows)(REAL *const *rows, const REAL *weight, int64_t M,
                                REAL *restrict out)
{
    const REAL *restrict K0 = rows[0], *restrict K1 = rows[1], *restrict K2 = rows[2],
                         *restrict K3 = rows[3];
    const REAL a0 = weight[0], a1 = weight[1], a2 = weight[2], a3 = weight[3];
    for (int64_t j = 0; j < M; j++)
        out[j] += K0[j] * a0 + K1[j] * a1 + K2[j] * a2 + K3[j] * a3;
}

static REAL FN(sum)(const REAL *p, int64_t n)
{
    REAL s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++)
        s += p[j];
    return s;
}

/* KT (M rows of stride ld_R, padding 0) = the transpose of K (R rows of stride ld_M); plain
   moves (vectorized, they would become slow scatters) */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
static void FN(transpose)(const REAL *K, int64_t R, int64_t M, int64_t ld_M, int64_t ld_R,
                          REAL *KT)
{
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < M; j++)
            KT[j * ld_R + i] = K[i * ld_M + j];
    for (int64_t j = 0; j < M; j++)
        for (int64_t i = R; i < ld_R; i++)
            KT[j * ld_R + i] = 0;
}

/* k = exp(x + f 1^T + 1 g^T), 0 below floor (and its transpose when k has one) */
VECTOR_CLONES static void FN(kernel)(const REAL *x, const REAL *f, const REAL *g, int64_t R,
                                     int64_t M, REAL floor, const FN(Kernel) *k)
{
    for (int64_t i = 0; i < R; i++) {
        const REAL *xi = x + i * M;
        REAL *Ki = k->K + i * k->ld_M;
        for (int64_t j = 0; j < M; j++)
            Ki[j] = FN(exp)(xi[j] + f[i] + g[j], floor);
        for (int64_t j = M; j < k->ld_M; j++)
            Ki[j] = 0;
    }
    if (!k->KT)
        return;
    FN(transpose)(k->K, R, M, k->ld_M, k->ld_R, k->KT);
}

/* One scaling iteration: u = 1 / K(b v), then v = 1 / K^T(a u); u and v have room for
   padded(R) and padded(M) values, bv and au are scratch (M, R). */
VECTOR_CLONES static void FN(scaling_step)(const FN(Kernel) *k, const FN(Masses) *m, int64_t R,
                                           int64_t M, REAL *restrict u, REAL *restrict v,
                                           REAL *restrict bv, REAL *restrict au)
{
    for (int64_t j = 0; j < M; j++) {
        bv[j] = v[j] * m->b[j];
        v[j] = 0;
    }
    if (k->KT) {
        FN(combine)(k->KT, M, k->ld_R, bv, u);
        for (int64_t i = 0; i < R; i++) {
            u[i] = (REAL)1 / u[i];
            au[i] = u[i] * m->a[i];
        }
        FN(combine)(k->K, R, k->ld_M, au, v);
    } else {
        for (int64_t i = 0; i < R; i += ROWS) {
            REAL *rows[ROWS], weight[ROWS] = {0}, s[ROWS];
            int64_t n = FN(block)(k->K, R, k->ld_M, i, rows);
            FN(dots)(rows, bv, M, s);
            for (int64_t q = 0; q < n; q++) {
                u[i + q] = (REAL)1 / s[q];
                weight[q] = u[i + q] * m->a[i + q];
            }
            FN(add_rows)(rows, weight, M, v);
        }
    }
    for (int64_t j = 0; j < M; j++)
        v[j] = (REAL)1 / v[j];
}

/* log-sum-exp of t (n values); -inf when all are -inf */
static REAL FN(logsumexp)(REAL *t, int64_t n, REAL floor)
{
    REAL top = -INFINITY;
    for (int64_t k = 0; k < n; k++)
        top = t[k] > top ? t[k] : top;
    if (top == -INFINITY)
        top = 0;
    for (int64_t k = 0; k < n; k++)
        t[k] = FN(exp)(t[k] - top, floor);
    return LOG(FN(sum)(t, n)) + top;
}

/* One log-domain iteration: f = -LSE_cols(x + log b + g), g = -LSE_rows(x + log a + f).
   t is scratch (max(R, M)). */
VECTOR_CLONES static void FN(log_step)(const REAL *x, const FN(Masses) *m, int64_t R, int64_t M,
                                       REAL floor, REAL *f, REAL *g, REAL *t)
{
    for (int64_t i = 0; i < R; i++) {
        for (int64_t j = 0; j < M; j++)
            t[j] = x[i * M + j] + (g[j] + m->log_b[j]);
        f[i] = -FN(logsumexp)(t, M, floor);
    }
    for (int64_t j = 0; j < M; j++) {
        for (int64_t i = 0; i < R; i++)
            t[i] = x[i * M + j] + (f[i] + m->log_a[i]);
        g[j] = -FN(logsumexp)(t, R, floor);
    }
}

/* What a forward call records for the reverse pass (all NULL when it records nothing): per
   item, each iteration's row and column vectors (u, v; f, g in log chunks), and per chunk its
   signed step count (negative: log domain), its base's index, and the column vector before it. */
typedef struct {
    REAL *rows, *cols;     /* (n_iter, R), (n_iter, M) */
    int32_t *chunks;       /* (max_chunks, 2): steps, base */
    int32_t *n_chunks;     /* (1) */
    REAL *starts;          /* (max_chunks, M) */
    REAL *base_f, *base_g; /* (max_chunks, R), (max_chunks, M) */
} FN(Record);

typedef struct {
    int64_t R, M, n_rows, n_iter, max_chunks;
    REAL limit, floor;       /* floor: FLOOR of _exp; the kernel's is floor + limit */
    int64_t transposed_up_to; /* bytes: K and K^T both kept when they fit */
} FN(Shape);

/* Whether an item's kernel is kept transposed too */
static int FN(transposed)(const FN(Shape) *s)
{
    return (s->R * FN(padded)(s->M) + s->M * FN(padded)(s->R)) * (int64_t)sizeof(REAL) <=
           s->transposed_up_to;
}

/* Scratch for a kernel (and its transpose) */
static int64_t FN(kernel_size)(const FN(Shape) *s)
{
    return s->R * FN(padded)(s->M) + (FN(transposed)(s) ? s->M * FN(padded)(s->R) : 0);
}

/* The kernel laid out in scratch (of kernel_size) */
static FN(Kernel) FN(kernel_in)(const FN(Shape) *s, REAL *scratch)
{
    int64_t ld_M = FN(padded)(s->M), ld_R = FN(padded)(s->R);
    return (FN(Kernel)){scratch, FN(transposed)(s) ? scratch + s->R * ld_M : NULL, ld_M, ld_R};
}

/* The first base: f = minus the row maxima, g0 = minus the column maxima of x + f (0 for a
   column without a finite one), so that every row and column of its kernel peaks at 1. */
VECTOR_CLONES static void FN(balanced_base)(const REAL *x, const REAL *row_max, int64_t R, int64_t M, REAL *f,
                              REAL *g0)
{
    for (int64_t j = 0; j < M; j++)
        g0[j] = -INFINITY;
    for (int64_t i = 0; i < R; i++) {
        f[i] = -row_max[i];
        for (int64_t j = 0; j < M; j++) {
            REAL e = x[i * M + j] + f[i];
            g0[j] = e > g0[j] ? e : g0[j];
        }
    }
    for (int64_t j = 0; j < M; j++)
        g0[j] = isfinite(g0[j]) ? -g0[j] : (REAL)0;
}

/* log P and/or P (when not NULL) of an item's last iterate, and its largest row error over the
   first n_rows rows; row is scratch (M). */
VECTOR_CLONES static REAL FN(finish)(const FN(Shape) *s, const REAL *x, const FN(Masses) *m, const REAL *f,
                       const REAL *g, const FN(Kernel) *k, const REAL *u, const REAL *v,
                       int last_scaling, REAL *log_plan, REAL *plan, REAL *row)
{
    const int64_t M = s->M;
    REAL worst = 0;
    for (int64_t i = 0; i < s->R; i++) {
        const REAL *xi = x + i * M, fa = f[i] + m->log_a[i], au = u[i] * m->a[i];
        REAL *p = plan ? plan + i * M : row;
        if (log_plan)
            for (int64_t j = 0; j < M; j++)
                log_plan[i * M + j] = xi[j] + fa + (g[j] + m->log_b[j]);
        if (last_scaling)
            for (int64_t j = 0; j < M; j++)
                p[j] = k->K[i * k->ld_M + j] * au * (v[j] * m->b[j]);
        else
            for (int64_t j = 0; j < M; j++)
                p[j] = FN(exp)(xi[j] + fa + (g[j] + m->log_b[j]), s->floor);
        REAL e = fabs(FN(sum)(p, M) - m->a[i]);
        if (i < s->n_rows)
            worst = e > worst || isnan(e) ? e : worst;
    }
    return worst;
}

/* The scratch of one item's forward */
static int64_t FN(forward_scratch)(const FN(Shape) *s)
{
    const int64_t R = s->R, M = s->M;
    return FN(kernel_size)(s) + 6 * R + 6 * M + FN(padded)(R) + FN(padded)(M) + (R > M ? R : M);
}

/* One item's forward; scratch: forward_scratch. */
static int FN(forward_item)(const FN(Shape) *s, const REAL *x, const REAL *a, const REAL *b,
                            const REAL *row_max, REAL *log_plan, REAL *plan, REAL *error,
                            FN(Record) rec, REAL *scratch)
{
    const int64_t R = s->R, M = s->M;
    const FN(Kernel) K = FN(kernel_in)(s, scratch);
    REAL *f = scratch + FN(kernel_size)(s), *g = f + R, *f0 = g + M, *g0 = f0 + R, *u = g0 + M;
    REAL *v = u + FN(padded)(R), *start = v + FN(padded)(M), *t = start + M;
    REAL *au = t + (R > M ? R : M);
    const FN(Masses) m = FN(masses)(a, b, R, M, au + R);
    const REAL k_floor = s->floor + s->limit;
    int have_base = 1, retry = 1, last_scaling = 0;
    int32_t base = 0, c = 0;

    FN(balanced_base)(x, row_max, R, M, f0, g0);
    memcpy(f, f0, R * sizeof(REAL));
    memset(g, 0, M * sizeof(REAL)); /* the iterations start from g = 0 whatever the base */
    FN(kernel)(x, f0, g0, R, M, k_floor, &K);
    if (rec.rows) {
        memcpy(rec.base_f, f0, R * sizeof(REAL));
        memcpy(rec.base_g, g0, M * sizeof(REAL));
    }
    for (int64_t done = 0; done < s->n_iter;) {
        int64_t steps = s->n_iter - done < CHECK_EVERY ? s->n_iter - done : CHECK_EVERY;
        if (c == s->max_chunks)
            return -1; /* cannot happen: max_chunks bounds the chunks of n_iter iterations */
        if (!have_base) { /* absorb the potentials into a fresh kernel */
            memcpy(f0, f, R * sizeof(REAL));
            memcpy(g0, g, M * sizeof(REAL));
            FN(kernel)(x, f0, g0, R, M, k_floor, &K);
            have_base = 1;
            if (rec.rows) {
                base++;
                memcpy(rec.base_f + base * R, f0, R * sizeof(REAL));
                memcpy(rec.base_g + base * M, g0, M * sizeof(REAL));
            }
        }
        for (int64_t j = 0; j < M; j++)
            v[j] = start[j] = FN(exp)(g[j] - g0[j], s->floor);
        for (int64_t k = 0; k < steps; k++) {
            FN(scaling_step)(&K, &m, R, M, u, v, t, au);
            if (rec.rows) {
                memcpy(rec.rows + (done + k) * R, u, R * sizeof(REAL));
                memcpy(rec.cols + (done + k) * M, v, M * sizeof(REAL));
            }
        }
        REAL reach = 0;
        for (int64_t i = 0; i < R + M; i++) {
            REAL d = fabs(LOG(i < R ? u[i] : v[i - R]));
            reach = d > reach || isnan(d) ? d : reach;
        }
        int32_t kind = 1;
        if (reach <= s->limit) { /* false for inf and NaN too */
            for (int64_t i = 0; i < R; i++)
                f[i] = f0[i] + LOG(u[i]);
            for (int64_t j = 0; j < M; j++)
                g[j] = g0[j] + LOG(v[j]);
            last_scaling = 1;
            retry = 1;
        } else {
            /* The scalings overflowed or lost precision: redo one iteration in the log domain,
               on whose potentials a fresh kernel usually keeps the next chunk in range; if that
               was just tried, redo the whole chunk. */
            steps = retry ? 1 : steps;
            retry = !retry;
            kind = -1;
            memcpy(start, g, M * sizeof(REAL));
            for (int64_t k = 0; k < steps; k++) {
                FN(log_step)(x, &m, R, M, s->floor, f, g, t);
                if (rec.rows) {
                    memcpy(rec.rows + (done + k) * R, f, R * sizeof(REAL));
                    memcpy(rec.cols + (done + k) * M, g, M * sizeof(REAL));
                }
            }
            last_scaling = 0;
        }
        if (!(reach <= s->limit / 2))
            have_base = 0;
        if (rec.rows) {
            rec.chunks[2 * c] = kind * (int32_t)steps;
            rec.chunks[2 * c + 1] = base;
            memcpy(rec.starts + c * M, start, M * sizeof(REAL));
        }
        c++;
        done += steps;
    }
    if (rec.rows)
        *rec.n_chunks = c;
    *error = FN(finish)(s, x, &m, f, g, &K, u, v, last_scaling, log_plan, plan, t);
    return 0;
}

int FN(sinkhorn_forward)(int64_t B, int64_t R, int64_t M, int64_t n_rows, int64_t n_iter,
                         int threads, REAL limit, REAL floor, int64_t transposed_up_to,
                         const REAL *x, const REAL *a,
                         const REAL *b, const REAL *row_max, REAL *log_plan, REAL *plan,
                         REAL *error, REAL *rows, REAL *cols, int32_t *chunks, int32_t *n_chunks,
                         REAL *starts, REAL *base_f, REAL *base_g, int64_t max_chunks)
{
    FN(Shape) s = {R, M, n_rows, n_iter, max_chunks, limit, floor, transposed_up_to};
    int status = 0;
    (void)threads;
#pragma omp parallel num_threads(threads)
    {
        REAL *scratch = vector_aligned(FN(forward_scratch)(&s) * sizeof(REAL));
#pragma omp for schedule(dynamic, 1)
        for (int64_t n = 0; n < B; n++) {
            FN(Record) rec = {0};
            if (rows)
                rec = (FN(Record)){rows + n * n_iter * R, cols + n * n_iter * M,
                                   chunks + n * max_chunks * 2, n_chunks + n,
                                   starts + n * max_chunks * M, base_f + n * max_chunks * R,
                                   base_g + n * max_chunks * M};
            int failed = scratch == NULL ? NATIVE_NO_MEMORY
                                         : FN(forward_item)(&s, x + n * R * M, a ? a + n * R : NULL,
                                                            b ? b + n * M : NULL, row_max + n * R,
                                                            log_plan ? log_plan + n * R * M : NULL,
                                                            plan ? plan + n * R * M : NULL,
                                                            error + n, rec, scratch);
            if (failed) {
#pragma omp atomic write
                status = failed;
            }
        }
        free(scratch);
    }
    return status;
}


/* The reverse of one scaling chunk (iterations first .. last, base kernel K): updates df (when
   has_df) and dg as _sinkhorn_solver._scaling_chunk_reverse does. Each step owes dx two terms
   -K * (l r^T): their vectors are written to left (R each) and right (M each), to be added by
   low_rank_update once per base (as _LowRank does); returns how many were written. dg has room
   for padded(M) values; step is scratch (padded(R)). */
VECTOR_CLONES static int64_t FN(scaling_reverse)(const FN(Kernel) *K, const FN(Masses) *m,
                                                 int64_t R, int64_t M, const REAL *rows,
                                                 const REAL *cols, const REAL *start,
                                                 int64_t first, int64_t last, const REAL *df,
                                                 int has_df, REAL *restrict dg,
                                                 REAL *restrict left, REAL *restrict right,
                                                 REAL *restrict step)
{
    int64_t terms = 0;
    for (int64_t k = last; k >= first; k--, terms += 2) {
        const REAL *u = rows + k * R, *v = cols + k * M;
        const REAL *v_before = k == first ? start : cols + (k - 1) * M;
        REAL *au = left + terms * R, *z = au + R, *w = right + terms * M, *bv = w + M;
        for (int64_t j = 0; j < M; j++) {
            w[j] = v[j] * dg[j]; /* column step: g = -LSE_rows(x + log a + f) */
            bv[j] = v_before[j] * m->b[j];
            dg[j] = 0;
        }
        if (K->KT) { /* the row step (f = -LSE_cols(x + log b + g)) as below, by sums of rows */
            FN(combine)(K->KT, M, K->ld_R, w, step);
            for (int64_t i = 0; i < R; i++) {
                au[i] = u[i] * m->a[i];
                z[i] = u[i] * ((has_df ? df[i] : 0) - au[i] * step[i]);
            }
            FN(combine)(K->K, R, K->ld_M, z, dg);
        } else {
            for (int64_t i = 0; i < R; i += ROWS) {
                REAL *Kr[ROWS], dots[ROWS], zs[ROWS] = {0};
                int64_t n = FN(block)(K->K, R, K->ld_M, i, Kr);
                FN(dots)(Kr, w, M, dots);
                for (int64_t q = 0; q < n; q++) { /* row step: f = -LSE_cols(x + log b + g) */
                    au[i + q] = u[i + q] * m->a[i + q];
                    z[i + q] = zs[q] =
                        u[i + q] * ((has_df ? df[i + q] : 0) - au[i + q] * dots[q]);
                }
                FN(add_rows)(Kr, zs, M, dg);
            }
        }
        for (int64_t j = 0; j < M; j++)
            dg[j] = -(dg[j] * bv[j]);
        has_df = 0;
    }
    return terms;
}

/* dx -= K * (left^T right) for terms rank-one terms (left: terms x R, right: terms x M); acc is
   scratch (M). Blocks of ROWS full rows and TILE columns keep their sums in registers over all the
   terms, so each value of right is loaded once per ROWS rows; the rest row by row. Either way a
   sum runs over the terms in order. */
#define TILE 16
VECTOR_CLONES static void FN(low_rank_update)(const FN(Kernel) *kernel, const REAL *left,
                                              const REAL *right, int64_t terms, int64_t R,
                                              int64_t M, REAL *dx, REAL *restrict acc)
{
    if (terms == 0)
        return;
    const REAL *K = kernel->K;
    const int64_t ld = kernel->ld_M;
    const int64_t R4 = R - R % ROWS, M16 = M - M % TILE;
    for (int64_t i = 0; i < R4; i += ROWS) {
        for (int64_t j0 = 0; j0 < M16; j0 += TILE) {
            REAL c0[TILE] = {0}, c1[TILE] = {0}, c2[TILE] = {0}, c3[TILE] = {0};
            for (int64_t t = 0; t < terms; t++) {
                const REAL *r = right + t * M + j0, *l = left + t * R + i;
                const REAL l0 = l[0], l1 = l[1], l2 = l[2], l3 = l[3];
#pragma omp simd
                for (int jj = 0; jj < TILE; jj++) {
                    c0[jj] += l0 * r[jj];
                    c1[jj] += l1 * r[jj];
                    c2[jj] += l2 * r[jj];
                    c3[jj] += l3 * r[jj];
                }
            }
            REAL *d = dx + i * M + j0;
            const REAL *k = K + i * ld + j0;
#pragma omp simd
            for (int jj = 0; jj < TILE; jj++) {
                d[jj] -= k[jj] * c0[jj];
                d[M + jj] -= k[ld + jj] * c1[jj];
                d[2 * M + jj] -= k[2 * ld + jj] * c2[jj];
                d[3 * M + jj] -= k[3 * ld + jj] * c3[jj];
            }
        }
        for (int64_t q = i; q < i + ROWS && M16 < M; q++) /* the columns past the last tile */
            for (int64_t j = M16; j < M; j++) {
                REAL sum = 0;
                for (int64_t t = 0; t < terms; t++)
                    sum += left[t * R + q] * right[t * M + j];
                dx[q * M + j] -= K[q * ld + j] * sum;
            }
    }
    for (int64_t i = R4; i < R; i++) {
        for (int64_t j = 0; j < M; j++)
            acc[j] = 0;
        for (int64_t t = 0; t < terms; t++) {
            const REAL l = left[t * R + i], *r = right + t * M;
            for (int64_t j = 0; j < M; j++)
                acc[j] += l * r[j];
        }
        for (int64_t j = 0; j < M; j++)
            dx[i * M + j] -= K[i * ld + j] * acc[j];
    }
}

/* The reverse of one log-domain chunk (_sinkhorn_solver._log_chunk_reverse); t is scratch (M). */
VECTOR_CLONES static void FN(log_reverse)(const REAL *x, const FN(Masses) *m, int64_t R,
                                          int64_t M, REAL floor, const REAL *rows,
                                          const REAL *cols, const REAL *start, int64_t first,
                                          int64_t last, REAL *dx, REAL *df, int has_df, REAL *dg,
                                          REAL *t)
{
    for (int64_t k = last; k >= first; k--) {
        const REAL *f = rows + k * R, *g = cols + k * M;
        const REAL *g_before = k == first ? start : cols + (k - 1) * M;
        for (int64_t j = 0; j < M; j++)
            t[j] = 0;
        for (int64_t i = 0; i < R; i++) {
            const REAL *xi = x + i * M, fa = f[i] + m->log_a[i];
            REAL *dxi = dx + i * M, s = 0;
            for (int64_t j = 0; j < M; j++) {
                REAL q = FN(exp)(xi[j] + fa + g[j], floor);
                dxi[j] -= q * dg[j];
                s += q * dg[j];
            }
            REAL d = (has_df ? df[i] : 0) - s;
            for (int64_t j = 0; j < M; j++) {
                REAL r = FN(exp)(xi[j] + f[i] + (g_before[j] + m->log_b[j]), floor);
                dxi[j] -= r * d;
                t[j] += d * r;
            }
        }
        for (int64_t j = 0; j < M; j++)
            dg[j] = -t[j];
        has_df = 0;
    }
}

/* The scratch of one item's reverse pass */
static int64_t FN(reverse_scratch)(const FN(Shape) *s)
{
    const int64_t R = s->R, M = s->M;
    return FN(kernel_size)(s) + FN(padded)(R) + FN(padded)(M) + (3 + 2 * s->n_iter) * R +
           (3 + 2 * s->n_iter) * M;
}

/* One item's reverse pass: dx holds dL/dlog P and becomes dL/dx. The scaling chunks' terms are
   added to dx once per base kernel (one pass over dx and K for all of them, not one per chunk),
   or sooner when they would take more than OWED_BYTES.
   Scratch: reverse_scratch. */
static void FN(reverse_item)(const FN(Shape) *s, const REAL *x, const REAL *a, const REAL *b,
                             FN(Record) rec, REAL *dx, REAL *scratch)
{
    const int64_t R = s->R, M = s->M;
    const FN(Kernel) K = FN(kernel_in)(s, scratch);
    REAL *df = scratch + FN(kernel_size)(s), *dg = df + R, *step = dg + FN(padded)(M);
    REAL *acc = step + FN(padded)(R), *left = acc + M, *right = left + 2 * s->n_iter * R;
    const FN(Masses) m = FN(masses)(a, b, R, M, right + 2 * s->n_iter * M);
    int32_t kernel_of = -1;
    int64_t owed = 0; /* terms in left and right not yet added to dx (base kernel_of) */
    memset(dg, 0, M * sizeof(REAL));
    for (int64_t i = 0; i < R; i++) {
        df[i] = FN(sum)(dx + i * M, M);
        for (int64_t j = 0; j < M; j++)
            dg[j] += dx[i * M + j];
    }
    int64_t end = s->n_iter;
    int has_df = 1;
    for (int32_t c = *rec.n_chunks - 1; c >= 0; c--) {
        int32_t steps = rec.chunks[2 * c], base = rec.chunks[2 * c + 1];
        int64_t first = end - (steps < 0 ? -steps : steps);
        const REAL *start = rec.starts + c * M;
        if (steps > 0) {
            int64_t bytes = (owed + 2 * (end - first)) * (R + M) * (int64_t)sizeof(REAL);
            if (base != kernel_of || bytes > OWED_BYTES) { /* a new base, or too many terms */
                FN(low_rank_update)(&K, left, right, owed, R, M, dx, acc);
                owed = 0;
            }
            if (base != kernel_of) {
                FN(kernel)(x, rec.base_f + base * R, rec.base_g + base * M, R, M,
                           s->floor + s->limit, &K);
                kernel_of = base;
            }
            owed += FN(scaling_reverse)(&K, &m, R, M, rec.rows, rec.cols, start, first, end - 1,
                                        df, has_df, dg, left + owed * R, right + owed * M, step);
        } else {
            FN(log_reverse)(x, &m, R, M, s->floor, rec.rows, rec.cols, start, first, end - 1, dx,
                            df, has_df, dg, acc);
        }
        has_df = 0;
        end = first;
    }
    FN(low_rank_update)(&K, left, right, owed, R, M, dx, acc);
}

int FN(sinkhorn_reverse)(int64_t B, int64_t R, int64_t M, int64_t n_iter, int threads, REAL limit,
                         REAL floor, int64_t transposed_up_to, const REAL *x, const REAL *a,
                         const REAL *b,
                         const REAL *rows, const REAL *cols, const int32_t *chunks,
                         const int32_t *n_chunks, const REAL *starts, const REAL *base_f,
                         const REAL *base_g, int64_t max_chunks, REAL *dx)
{
    FN(Shape) s = {R, M, R, n_iter, max_chunks, limit, floor, transposed_up_to};
    int status = 0;
    (void)threads;
#pragma omp parallel num_threads(threads)
    {
        REAL *scratch = vector_aligned(FN(reverse_scratch)(&s) * sizeof(REAL));
#pragma omp for schedule(dynamic, 1)
        for (int64_t n = 0; n < B; n++) {
            FN(Record) rec = {(REAL *)rows + n * n_iter * R, (REAL *)cols + n * n_iter * M,
                              (int32_t *)chunks + n * max_chunks * 2, (int32_t *)n_chunks + n,
                              (REAL *)starts + n * max_chunks * M,
                              (REAL *)base_f + n * max_chunks * R,
                              (REAL *)base_g + n * max_chunks * M};
            if (scratch == NULL) {
#pragma omp atomic write
                status = NATIVE_NO_MEMORY;
            } else {
                FN(reverse_item)(&s, x + n * R * M, a ? a + n * R : NULL, b ? b + n * M : NULL,
                                 rec, dx + n * R * M, scratch);
            }
        }
        free(scratch);
    }
    return status;
}


/* The implicit gradient works in double for both precisions (as _sinkhorn_implicit does): P is
   read in its own precision and each value widened where it is used, so a float32 plan is not
   copied (half the bytes to stream in each conjugate-gradient step). */

/* out = S y for the Schur complement S = diag(diagonal) - P^T diag(1/rows) P, a row at a time */
VECTOR_CLONES static void FN(schur_apply)(const REAL *P, const double *rows,
                                          const double *diagonal, int64_t R, int64_t M,
                                          const double *y, double *restrict out)
{
    for (int64_t j = 0; j < M; j++)
        out[j] = diagonal[j] * y[j];
    for (int64_t i = 0; i < R; i++) {
        const REAL *p = P + i * M;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < M; j++)
            s += (double)p[j] * y[j];
        const double weight = -s / rows[i];
        for (int64_t j = 0; j < M; j++)
            out[j] += weight * (double)p[j];
    }
}

/* Jacobi-preconditioned conjugate gradient on S beta = rhs, as
   _sinkhorn_implicit._conjugate_gradient does for one item (stops once the residual is below tol
   of the right-hand side's); work: 4M. */
VECTOR_CLONES static void FN(conjugate_gradient)(const REAL *P, const double *rows,
                                                 const double *diagonal, int64_t R, int64_t M,
                                                 const double *rhs, double *y, double damping,
                                                 double tol, double *work)
{
    double *residual = work, *direction = residual + M, *applied = direction + M;
    double *inverse = applied + M, power = 0, size = 0;
    memcpy(inverse, diagonal, M * sizeof(double)); /* S's own diagonal first */
    for (int64_t i = 0; i < R; i++) {
        const REAL *p = P + i * M;
        const double weight = 1 / rows[i];
        for (int64_t j = 0; j < M; j++)
            inverse[j] -= (double)p[j] * p[j] * weight;
    }
    for (int64_t j = 0; j < M; j++) {
        inverse[j] = 1 / (inverse[j] > damping ? inverse[j] : damping);
        y[j] = 0;
        residual[j] = rhs[j];
        direction[j] = residual[j] * inverse[j];
        power += residual[j] * direction[j];
        size += residual[j] * residual[j];
    }
    double stop = tol * tol * size;
    for (int64_t step = 0; step < 2 * M + 20 && size > stop; step++) {
        FN(schur_apply)(P, rows, diagonal, R, M, direction, applied);
        double curvature = 0, new_power = 0;
        for (int64_t j = 0; j < M; j++)
            curvature += direction[j] * applied[j];
        double alpha = curvature > 0 ? power / curvature : 0;
        size = 0;
        for (int64_t j = 0; j < M; j++) {
            y[j] += alpha * direction[j];
            residual[j] -= alpha * applied[j];
            size += residual[j] * residual[j];
            new_power += residual[j] * residual[j] * inverse[j];
        }
        double ratio = power > 0 ? new_power / power : 0;
        for (int64_t j = 0; j < M; j++)
            direction[j] = residual[j] * inverse[j] + ratio * direction[j];
        power = new_power;
    }
}

/* S = diag(diagonal) - P^T diag(1/rows) P, dense (M x M) */
VECTOR_CLONES static void FN(schur_dense)(const REAL *P, const double *rows,
                                          const double *diagonal, int64_t R, int64_t M,
                                          double *restrict S)
{
    memset(S, 0, M * M * sizeof(double));
    for (int64_t i = 0; i < R; i++) {
        const REAL *p = P + i * M;
        for (int64_t j = 0; j < M; j++) {
            const double weight = -(double)p[j] / rows[i];
            for (int64_t k = 0; k < M; k++)
                S[j * M + k] += weight * (double)p[k];
        }
    }
    for (int64_t j = 0; j < M; j++)
        S[j * M + j] += diagonal[j];
}

/* One item's implicit gradient (_sinkhorn_implicit.implicit_grad): H becomes dL/dx. Scratch
   (double): 2R + 8M, M*M when dense. */
static void FN(implicit_item)(const REAL *P, REAL *H, int64_t R, int64_t M, int dense,
                              double damping, double tol, double *scratch)
{
    double *rows = scratch, *h_rows = rows + R, *cols = h_rows + R, *rhs = cols + M;
    double *diagonal = rhs + M, *beta = diagonal + M, *work = beta + M, *S = work + 4 * M;
    for (int64_t j = 0; j < M; j++)
        cols[j] = rhs[j] = 0;
    for (int64_t i = 0; i < R; i++) {
        const REAL *p = P + i * M, *q = H + i * M;
        double r = 0, h = 0;
#pragma omp simd reduction(+ : r, h)
        for (int64_t j = 0; j < M; j++) {
            r += p[j];
            h += q[j];
            cols[j] += p[j];
            rhs[j] += q[j];
        }
        rows[i] = r > 0 ? r : 1; /* padding: decoupled, and its right-hand side is 0 */
        h_rows[i] = h;
    }
    for (int64_t i = 0; i < R; i++) {
        const REAL *p = P + i * M;
        const double weight = h_rows[i] / rows[i];
        for (int64_t j = 0; j < M; j++)
            rhs[j] -= weight * p[j];
    }
    for (int64_t j = 0; j < M; j++)
        diagonal[j] = (cols[j] > 0 ? cols[j] : 1) + damping;
    if (dense) {
        FN(schur_dense)(P, rows, diagonal, R, M, S);
        memcpy(beta, rhs, M * sizeof(double));
        lu_solve(S, beta, M);
    } else {
        FN(conjugate_gradient)(P, rows, diagonal, R, M, rhs, beta, damping, tol, work);
    }
    for (int64_t i = 0; i < R; i++) {
        const REAL *p = P + i * M;
        REAL *q = H + i * M;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < M; j++)
            s += (double)p[j] * beta[j];
        const double alpha = (h_rows[i] - s) / rows[i];
        for (int64_t j = 0; j < M; j++)
            q[j] = (REAL)(q[j] - p[j] * (alpha + beta[j]));
    }
}

int FN(sinkhorn_implicit)(int64_t B, int64_t R, int64_t M, int threads, int64_t dense_up_to,
                          double damping, double tol, const REAL *P, REAL *H)
{
    int status = 0, dense = M <= dense_up_to;
    (void)threads;
#pragma omp parallel num_threads(threads)
    {
        double *scratch =
            vector_aligned((2 * R + 8 * M + (dense ? M * M : 0)) * sizeof(double));
#pragma omp for schedule(dynamic, 1)
        for (int64_t n = 0; n < B; n++) {
            if (scratch == NULL) {
#pragma omp atomic write
                status = NATIVE_NO_MEMORY;
            } else {
                FN(implicit_item)(P + n * R * M, H + n * R * M, R, M, dense, damping, tol,
                                  scratch);
            }
        }
        free(scratch);
    }
    return status;
}
