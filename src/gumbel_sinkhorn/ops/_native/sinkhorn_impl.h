/* One precision (REAL, FN, LOG, and the exp's BITS ... DEGREE) of the kernels; included by
   sinkhorn.c. Per item: x (R, M)
   scores, a (R) / b (M) masses or NULL. The scaling form, the chunks, the base refreshes and the
   log-domain redos are those of _sinkhorn_solver.solve, decided per item instead of per batch. */

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

static inline REAL FN(mass)(const REAL *m, int64_t k)
{
    return m ? m[k] : (REAL)1;
}

static inline REAL FN(log_mass)(const REAL *m, int64_t k)
{
    return m ? LOG(m[k]) : (REAL)0;
}

static REAL FN(dot)(const REAL *p, const REAL *q, int64_t n)
{
    REAL s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++)
        s += p[j] * q[j];
    return s;
}

/* K = exp(x + f 1^T + 1 g^T), 0 below floor */
VECTOR_CLONES static void FN(kernel)(const REAL *x, const REAL *f, const REAL *g, int64_t R, int64_t M,
                       REAL floor, REAL *K)
{
    for (int64_t i = 0; i < R; i++) {
        const REAL *xi = x + i * M;
        REAL *Ki = K + i * M;
        for (int64_t j = 0; j < M; j++)
            Ki[j] = FN(exp)(xi[j] + f[i] + g[j], floor);
    }
}

/* One scaling iteration: u = 1 / K(b v), then v = 1 / K^T(a u); bv is scratch (M). */
VECTOR_CLONES static void FN(scaling_step)(const REAL *K, const REAL *a, const REAL *b, int64_t R, int64_t M,
                             REAL *u, REAL *v, REAL *bv)
{
    for (int64_t j = 0; j < M; j++) {
        bv[j] = v[j] * FN(mass)(b, j);
        v[j] = 0;
    }
    for (int64_t i = 0; i < R; i++) {
        const REAL *Ki = K + i * M;
        u[i] = (REAL)1 / FN(dot)(Ki, bv, M);
        REAL au = u[i] * FN(mass)(a, i);
        for (int64_t j = 0; j < M; j++)
            v[j] += Ki[j] * au;
    }
    for (int64_t j = 0; j < M; j++)
        v[j] = (REAL)1 / v[j];
}

/* log-sum-exp of t (n values, stride step); -inf when all are -inf */
static REAL FN(logsumexp)(const REAL *t, int64_t n, REAL floor)
{
    REAL top = -INFINITY, s = 0;
    for (int64_t k = 0; k < n; k++)
        top = t[k] > top ? t[k] : top;
    if (top == -INFINITY)
        top = 0;
    for (int64_t k = 0; k < n; k++)
        s += FN(exp)(t[k] - top, floor);
    return LOG(s) + top;
}

/* One log-domain iteration: f = -LSE_cols(x + log b + g), g = -LSE_rows(x + log a + f).
   t is scratch (max(R, M)). */
VECTOR_CLONES static void FN(log_step)(const REAL *x, const REAL *a, const REAL *b, int64_t R, int64_t M,
                         REAL floor, REAL *f, REAL *g, REAL *t)
{
    for (int64_t i = 0; i < R; i++) {
        for (int64_t j = 0; j < M; j++)
            t[j] = x[i * M + j] + (g[j] + FN(log_mass)(b, j));
        f[i] = -FN(logsumexp)(t, M, floor);
    }
    for (int64_t j = 0; j < M; j++) {
        for (int64_t i = 0; i < R; i++)
            t[i] = x[i * M + j] + (f[i] + FN(log_mass)(a, i));
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
    REAL limit, floor; /* floor: FLOOR of _exp; the kernel's is floor + limit */
} FN(Shape);

/* One item's forward; scratch: R*M + 3R + 4M + max(R, M). Writes log P and/or P (when not NULL)
   and the largest row error over the first n_rows rows. */
VECTOR_CLONES static int FN(forward_item)(const FN(Shape) *s, const REAL *x, const REAL *a, const REAL *b,
                            const REAL *row_max, REAL *log_plan, REAL *plan, REAL *error,
                            FN(Record) rec, REAL *scratch)
{
    const int64_t R = s->R, M = s->M;
    REAL *K = scratch, *f = K + R * M, *g = f + R, *f0 = g + M, *g0 = f0 + R, *u = g0 + M;
    REAL *v = u + R, *start = v + M, *t = start + M;
    const REAL k_floor = s->floor + s->limit;
    int have_base = 1, retry = 1, last_scaling = 0;
    int32_t base = 0, c = 0;

    for (int64_t i = 0; i < R; i++)
        f[i] = f0[i] = -row_max[i];
    for (int64_t j = 0; j < M; j++) { /* the balanced base: every column of K peaks at 1 */
        REAL top = -INFINITY;
        for (int64_t i = 0; i < R; i++) {
            REAL e = x[i * M + j] + f[i];
            top = e > top ? e : top;
        }
        g[j] = 0;
        g0[j] = isfinite(-top) ? -top : (REAL)0;
    }
    FN(kernel)(x, f0, g0, R, M, k_floor, K);
    if (rec.rows) {
        memcpy(rec.base_f, f0, R * sizeof(REAL));
        memcpy(rec.base_g, g0, M * sizeof(REAL));
    }
    for (int64_t done = 0; done < s->n_iter;) {
        int64_t steps = s->n_iter - done < CHECK_EVERY ? s->n_iter - done : CHECK_EVERY;
        if (c == s->max_chunks)
            return -1; /* cannot happen: max_chunks bounds the chunks of n_iter iterations */
        if (!have_base) {
            memcpy(f0, f, R * sizeof(REAL));
            memcpy(g0, g, M * sizeof(REAL));
            FN(kernel)(x, f0, g0, R, M, k_floor, K);
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
            FN(scaling_step)(K, a, b, R, M, u, v, t);
            if (rec.rows) {
                memcpy(rec.rows + (done + k) * R, u, R * sizeof(REAL));
                memcpy(rec.cols + (done + k) * M, v, M * sizeof(REAL));
            }
        }
        REAL reach = 0;
        for (int64_t i = 0; i < R; i++) {
            REAL d = LOG(u[i]);
            reach = fabs(d) > reach || isnan(d) ? fabs(d) : reach;
        }
        for (int64_t j = 0; j < M; j++) {
            REAL d = LOG(v[j]);
            reach = fabs(d) > reach || isnan(d) ? fabs(d) : reach;
        }
        int32_t kind = 1;
        if (reach <= s->limit) { /* false for inf and NaN too */
            for (int64_t i = 0; i < R; i++)
                f[i] = f0[i] + LOG(u[i]);
            for (int64_t j = 0; j < M; j++)
                g[j] = g0[j] + LOG(v[j]);
            last_scaling = 1;
            retry = 1;
        } else { /* redo one iteration in the log domain; if that was just tried, the chunk */
            steps = retry ? 1 : steps;
            retry = !retry;
            kind = -1;
            memcpy(start, g, M * sizeof(REAL));
            for (int64_t k = 0; k < steps; k++) {
                FN(log_step)(x, a, b, R, M, s->floor, f, g, t);
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

    REAL worst = 0;
    for (int64_t i = 0; i < R; i++) {
        REAL fa = f[i] + FN(log_mass)(a, i), au = u[i] * FN(mass)(a, i), sum = 0;
        for (int64_t j = 0; j < M; j++) {
            REAL lp = x[i * M + j] + fa + (g[j] + FN(log_mass)(b, j));
            REAL p = last_scaling ? K[i * M + j] * au * (v[j] * FN(mass)(b, j))
                                  : FN(exp)(lp, s->floor);
            if (log_plan)
                log_plan[i * M + j] = lp;
            if (plan)
                plan[i * M + j] = p;
            sum += p;
        }
        REAL e = fabs(sum - FN(mass)(a, i));
        if (i < s->n_rows)
            worst = e > worst || isnan(e) ? e : worst;
    }
    *error = worst;
    return 0;
}

int FN(sinkhorn_forward)(int64_t B, int64_t R, int64_t M, int64_t n_rows, int64_t n_iter,
                         int threads, REAL limit, REAL floor, const REAL *x, const REAL *a,
                         const REAL *b, const REAL *row_max, REAL *log_plan, REAL *plan,
                         REAL *error, REAL *rows, REAL *cols, int32_t *chunks, int32_t *n_chunks,
                         REAL *starts, REAL *base_f, REAL *base_g, int64_t max_chunks)
{
    FN(Shape) s = {R, M, n_rows, n_iter, max_chunks, limit, floor};
    int status = 0;
    (void)threads;
#pragma omp parallel num_threads(threads)
    {
        REAL *scratch = malloc((R * M + 3 * R + 4 * M + (R > M ? R : M)) * sizeof(REAL));
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

/* The reverse of one scaling chunk (iterations first .. last, base kernel K): updates dx, df
   (when has_df) and dg as _sinkhorn_solver._scaling_chunk_reverse does; t is scratch (M). */
VECTOR_CLONES static void FN(scaling_reverse)(const REAL *K, const REAL *a, const REAL *b, int64_t R, int64_t M,
                                const REAL *rows, const REAL *cols, const REAL *start,
                                int64_t first, int64_t last, REAL *dx, REAL *df, int has_df,
                                REAL *dg, REAL *w, REAL *bv)
{
    for (int64_t k = last; k >= first; k--) {
        const REAL *u = rows + k * R, *v = cols + k * M;
        const REAL *v_before = k == first ? start : cols + (k - 1) * M;
        for (int64_t j = 0; j < M; j++) {
            w[j] = v[j] * dg[j]; /* column step: g = -LSE_rows(x + log a + f) */
            bv[j] = v_before[j] * FN(mass)(b, j);
            dg[j] = 0;
        }
        for (int64_t i = 0; i < R; i++) {
            const REAL *Ki = K + i * M;
            REAL *dxi = dx + i * M;
            REAL au = u[i] * FN(mass)(a, i), step = FN(dot)(Ki, w, M);
            REAL d = (has_df ? df[i] : 0) - au * step;
            REAL z = u[i] * d; /* row step: f = -LSE_cols(x + log b + g) */
            for (int64_t j = 0; j < M; j++) {
                dxi[j] -= Ki[j] * (au * w[j] + z * bv[j]);
                dg[j] += z * Ki[j];
            }
        }
        for (int64_t j = 0; j < M; j++)
            dg[j] = -(dg[j] * bv[j]);
        has_df = 0;
    }
}

/* The reverse of one log-domain chunk (_sinkhorn_solver._log_chunk_reverse); df, t scratch. */
VECTOR_CLONES static void FN(log_reverse)(const REAL *x, const REAL *a, const REAL *b, int64_t R, int64_t M,
                            REAL floor, const REAL *rows, const REAL *cols, const REAL *start,
                            int64_t first, int64_t last, REAL *dx, REAL *df, int has_df, REAL *dg,
                            REAL *t)
{
    for (int64_t k = last; k >= first; k--) {
        const REAL *f = rows + k * R, *g = cols + k * M;
        const REAL *g_before = k == first ? start : cols + (k - 1) * M;
        for (int64_t i = 0; i < R; i++) {
            REAL fa = f[i] + FN(log_mass)(a, i), s = 0;
            for (int64_t j = 0; j < M; j++) {
                REAL q = FN(exp)(x[i * M + j] + fa + g[j], floor);
                dx[i * M + j] -= q * dg[j];
                s += q * dg[j];
            }
            df[i] = (has_df ? df[i] : 0) - s;
        }
        for (int64_t j = 0; j < M; j++)
            t[j] = 0;
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < M; j++) {
                REAL r = FN(exp)(x[i * M + j] + f[i] + (g_before[j] + FN(log_mass)(b, j)),
                                       floor);
                dx[i * M + j] -= r * df[i];
                t[j] += df[i] * r;
            }
        for (int64_t j = 0; j < M; j++)
            dg[j] = -t[j];
        has_df = 0;
    }
}

/* One item's reverse pass: dx holds dL/dlog P and becomes dL/dx. Scratch: R*M + 2R + 3M. */
VECTOR_CLONES static void FN(reverse_item)(const FN(Shape) *s, const REAL *x, const REAL *a, const REAL *b,
                             FN(Record) rec, REAL *dx, REAL *scratch)
{
    const int64_t R = s->R, M = s->M;
    REAL *K = scratch, *df = K + R * M, *dg = df + R, *w = dg + M, *bv = w + M;
    int32_t kernel_of = -1;
    for (int64_t i = 0; i < R; i++)
        df[i] = 0;
    for (int64_t j = 0; j < M; j++)
        dg[j] = 0;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < M; j++) {
            df[i] += dx[i * M + j];
            dg[j] += dx[i * M + j];
        }
    int64_t end = s->n_iter;
    int has_df = 1;
    for (int32_t c = *rec.n_chunks - 1; c >= 0; c--) {
        int32_t steps = rec.chunks[2 * c], base = rec.chunks[2 * c + 1];
        int64_t first = end - (steps < 0 ? -steps : steps);
        const REAL *start = rec.starts + c * M;
        if (steps > 0) {
            if (base != kernel_of) {
                FN(kernel)(x, rec.base_f + base * R, rec.base_g + base * M, R, M,
                           s->floor + s->limit, K);
                kernel_of = base;
            }
            FN(scaling_reverse)(K, a, b, R, M, rec.rows, rec.cols, start, first, end - 1, dx, df,
                                has_df, dg, w, bv);
        } else {
            FN(log_reverse)(x, a, b, R, M, s->floor, rec.rows, rec.cols, start, first, end - 1, dx,
                            df, has_df, dg, w);
        }
        has_df = 0;
        end = first;
    }
}

int FN(sinkhorn_reverse)(int64_t B, int64_t R, int64_t M, int64_t n_iter, int threads, REAL limit,
                         REAL floor, const REAL *x, const REAL *a, const REAL *b,
                         const REAL *rows, const REAL *cols, const int32_t *chunks,
                         const int32_t *n_chunks, const REAL *starts, const REAL *base_f,
                         const REAL *base_g, int64_t max_chunks, REAL *dx)
{
    FN(Shape) s = {R, M, R, n_iter, max_chunks, limit, floor};
    int status = 0;
    (void)threads;
#pragma omp parallel num_threads(threads)
    {
        REAL *scratch = malloc((R * M + 2 * R + 3 * M) * sizeof(REAL));
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

/* The implicit gradient's Schur complement S = diag(c + damping) - P^T diag(1/r) P applied to y */
VECTOR_CLONES static void FN(schur_apply)(const REAL *P, const double *rows, const double *diagonal, int64_t R,
                            int64_t M, const double *y, double *out)
{
    for (int64_t j = 0; j < M; j++)
        out[j] = diagonal[j] * y[j];
    for (int64_t i = 0; i < R; i++) {
        const REAL *Pi = P + i * M;
        double s = 0;
        for (int64_t j = 0; j < M; j++)
            s += Pi[j] * y[j];
        s /= rows[i];
        for (int64_t j = 0; j < M; j++)
            out[j] -= s * Pi[j];
    }
}

/* Jacobi-preconditioned conjugate gradient on S beta = rhs, as
   _sinkhorn_implicit._conjugate_gradient does for one item (stops once the residual is below tol
   of the right-hand side's); work: 4M. */
VECTOR_CLONES static void FN(conjugate_gradient)(const REAL *P, const double *rows, const double *diagonal,
                                   int64_t R, int64_t M, const double *rhs, double *y,
                                   double damping, double tol, double *work)
{
    double *residual = work, *direction = residual + M, *applied = direction + M;
    double *inverse = applied + M, power = 0, size = 0;
    for (int64_t j = 0; j < M; j++) {
        double own = diagonal[j];
        for (int64_t i = 0; i < R; i++)
            own -= (double)P[i * M + j] * P[i * M + j] / rows[i];
        inverse[j] = 1 / (own > damping ? own : damping);
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

/* One item's implicit gradient (_sinkhorn_implicit.implicit_grad): H becomes dL/dx.
   Scratch (double): 2R + 8M, plus M*M when dense. */
VECTOR_CLONES static void FN(implicit_item)(const REAL *P, REAL *H, int64_t R, int64_t M, int dense,
                              double damping, double tol, double *scratch)
{
    double *rows = scratch, *h_rows = rows + R, *cols = h_rows + R, *rhs = cols + M;
    double *diagonal = rhs + M, *beta = diagonal + M, *work = beta + M, *S = work + 4 * M;
    for (int64_t j = 0; j < M; j++)
        cols[j] = rhs[j] = 0;
    for (int64_t i = 0; i < R; i++) {
        double r = 0, h = 0;
        for (int64_t j = 0; j < M; j++) {
            r += P[i * M + j];
            h += H[i * M + j];
            cols[j] += P[i * M + j];
            rhs[j] += H[i * M + j];
        }
        rows[i] = r > 0 ? r : 1; /* padding: decoupled, and its right-hand side is 0 */
        h_rows[i] = h;
    }
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < M; j++)
            rhs[j] -= h_rows[i] / rows[i] * P[i * M + j];
    for (int64_t j = 0; j < M; j++)
        diagonal[j] = (cols[j] > 0 ? cols[j] : 1) + damping;
    if (dense) {
        memset(S, 0, M * M * sizeof(double));
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < M; j++) {
                double p = P[i * M + j] / rows[i];
                if (p == 0)
                    continue;
                for (int64_t k = 0; k < M; k++)
                    S[j * M + k] -= p * P[i * M + k];
            }
        for (int64_t j = 0; j < M; j++) {
            S[j * M + j] += diagonal[j];
            beta[j] = rhs[j];
        }
        lu_solve(S, beta, M);
    } else {
        FN(conjugate_gradient)(P, rows, diagonal, R, M, rhs, beta, damping, tol, work);
    }
    for (int64_t i = 0; i < R; i++) {
        double alpha = h_rows[i];
        for (int64_t j = 0; j < M; j++)
            alpha -= P[i * M + j] * beta[j];
        alpha /= rows[i];
        for (int64_t j = 0; j < M; j++)
            H[i * M + j] = (REAL)(H[i * M + j] - P[i * M + j] * (alpha + beta[j]));
    }
}

int FN(sinkhorn_implicit)(int64_t B, int64_t R, int64_t M, int threads, int64_t dense_up_to,
                          double damping, double tol, const REAL *P, REAL *H)
{
    int status = 0, dense = M <= dense_up_to;
    (void)threads;
#pragma omp parallel num_threads(threads)
    {
        double *scratch = malloc((2 * R + 8 * M + (dense ? M * M : 0)) * sizeof(double));
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
