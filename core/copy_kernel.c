/* The copy model's push and predict (core/copy_model.py) for a batch of streams, in C: the numpy
 * CopyCache makes ~40 passes over the batch's history a character (~95 us a step of 16 streams,
 * as long as the seed-size model's step); here each stream walks its own places once.
 *
 * The same arithmetic in the same order as CopyCache, so the same floats bit for bit: each
 * candidate's weight is the product of its table entries in CopyCache's order, a character's
 * weights add in place order (np.bincount's), and the mass is numpy's pairwise sum of the row.
 * Built into core/_native.so with the int4 step (core/native.py).
 *
 * Also one stream's whole draw (draw_one: Sampler._draw's, with the copy model's prediction). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_CHAR (-1)

typedef struct {
    int32_t vocab, cap, far, in_part_last; /* len(BARS) - 1, len(IN_PART) - 1 */
    int32_t bar_line, line_break;          /* or NO_CHAR */
    const uint8_t *events;      /* [V + 1][V]: bit 0 bar line, 1 part start, 2 part end, 3 line end */
    const double *sentinel_w;   /* [V + 1][V] */
    const double *match_w, *bar_w, *in_part_w;
    const uint8_t *ignored;     /* [V]: characters a loop test skips */
    double aligned_w, loop_w, after_part_line_w, weight;
} CopyTables;

typedef struct {
    int32_t batch, window, t, pad;
    int32_t *hist;      /* [B][W] */
    int16_t *match;     /* [B][W] */
    int32_t *bar_no;    /* [B][W] */
    int32_t *part_bar;  /* [B][W] */
    int32_t *bars, *part_from;
    uint8_t *closed, *run;
    int64_t *last_bar;
    int64_t *lines;     /* [B][2]: the last bar lines, oldest first */
    int32_t *n_lines;
} CopyState;

/* numpy's pairwise sum of a contiguous float64 row (what ndarray.sum(axis=1) adds in). */
static double pairwise_sum(const double *a, int n) {
    if (n < 8) {
        double res = -0.0;
        for (int i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        int i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* Whether the bar closed at t holds what the bar before it held, ignored characters aside. */
static int same_bars(const CopyTables *tb, const int32_t *hist, const int64_t *lines, int n_lines,
                     int64_t t) {
    if (n_lines < 2) return 0;
    int64_t i = lines[0] + 1, j = lines[1] + 1, kept = 0;
    for (;;) {
        while (i < lines[1] && tb->ignored[hist[i]]) i++;
        while (j < t && tb->ignored[hist[j]]) j++;
        int end_i = i >= lines[1], end_j = j >= t;
        if (end_i || end_j) return end_i && end_j && kept > 0;
        if (hist[i] != hist[j]) return 0;
        i++, j++, kept++;
    }
}

static void drop_older_half(CopyState *s) {
    int keep = s->window / 2, drop = s->t - keep;
    for (int b = 0; b < s->batch; b++) {
        size_t row = (size_t)b * s->window;
        memmove(s->hist + row, s->hist + row + drop, sizeof(int32_t) * keep);
        memmove(s->match + row, s->match + row + drop, sizeof(int16_t) * keep);
        memmove(s->bar_no + row, s->bar_no + row + drop, sizeof(int32_t) * keep);
        memmove(s->part_bar + row, s->part_bar + row + drop, sizeof(int32_t) * keep);
        for (int i = keep; i < s->window; i++) {
            s->hist[row + i] = NO_CHAR;
            s->match[row + i] = 0;
            s->bar_no[row + i] = s->part_bar[row + i] = 0;
        }
        s->last_bar[b] -= drop;
        s->n_lines[b] = 0;
        s->run[b] = 0;
    }
    s->t = keep;
}

/* Appends ids[b] to stream b, extending or breaking every match. Returns -1 (doing nothing)
 * where an id is outside the vocabulary. */
int copy_push(const CopyTables *tb, CopyState *s, const int64_t *ids) {
    for (int b = 0; b < s->batch; b++)
        if (ids[b] < 0 || ids[b] >= tb->vocab) return -1;
    if (s->t == s->window) drop_older_half(s);
    int t = s->t, V = tb->vocab;
    for (int b = 0; b < s->batch; b++) {
        int32_t id = (int32_t)ids[b];
        int32_t *hist = s->hist + (size_t)b * s->window;
        int16_t *match = s->match + (size_t)b * s->window;
        int32_t prev = t ? hist[t - 1] : NO_CHAR;
        if (t) {
            for (int i = t - 1; i >= 1; i--) {  /* from the end: match[i - 1] still the old one */
                int n = match[i - 1] + 1;
                match[i] = (int16_t)(hist[i] == id ? (n < tb->cap ? n : tb->cap) : 0);
            }
            match[0] = (int16_t)(hist[0] == id);
        }
        int ev = tb->events[(size_t)(prev < 0 ? V : prev) * V + id];
        s->bars[b] += ev & 1;
        if (ev & 2) s->part_from[b] = s->bars[b];
        s->closed[b] = (ev & 4) || (s->closed[b] && (ev & 8));
        s->bar_no[(size_t)b * s->window + t] = s->bars[b];
        s->part_bar[(size_t)b * s->window + t] = s->bars[b] - s->part_from[b];
        if (id == tb->bar_line) s->last_bar[b] = t;
        if (ev & 3) {
            int64_t *lines = s->lines + 2 * (size_t)b;
            s->run[b] = !(ev & 2) && same_bars(tb, hist, lines, s->n_lines[b], t);
            if (ev & 2) {
                lines[0] = t;
                s->n_lines[b] = 1;
            } else if (s->n_lines[b] == 0) {
                lines[0] = t;
                s->n_lines[b] = 1;
            } else {
                lines[0] = lines[s->n_lines[b] - 1];
                lines[1] = t;
                s->n_lines[b] = 2;
            }
        }
        hist[t] = id;
    }
    s->t = t + 1;
    return 0;
}

/* lam[b] and p[b][V] (the copy distribution) of every stream; with `allowed` ([b][V] bools:
 * the grammar's), 0 where it is 0 (the values of p times allowed, without numpy's call). */
void copy_predict(const CopyTables *tb, const CopyState *s, double *lam, double *p,
                  const uint8_t *allowed) {
    int t = s->t, V = tb->vocab;
    memset(p, 0, sizeof(double) * (size_t)s->batch * V);
    for (int b = 0; b < s->batch; b++) {
        lam[b] = 0.0;
        if (t < 2) continue;
        const int32_t *hist = s->hist + (size_t)b * s->window;
        const int16_t *match = s->match + (size_t)b * s->window;
        const int32_t *bar_no = s->bar_no + (size_t)b * s->window;
        const int32_t *part_bar = s->part_bar + (size_t)b * s->window;
        double *row = p + (size_t)b * V;
        int64_t since = t - 1 - s->last_bar[b];
        int32_t bars = s->bars[b], bar_of_part = bars - s->part_from[b];
        double in_part = tb->in_part_w[bar_of_part < tb->in_part_last ? bar_of_part
                                                                       : tb->in_part_last];
        for (int i = 0; i < t - 1; i++) {
            int n = match[i];
            if (!n) continue;
            int back = bars - bar_no[i];
            back = back < tb->far ? back : tb->far;
            double e = tb->match_w[n] * tb->bar_w[back];
            if (n > since) e *= tb->aligned_w;
            if (part_bar[i] == bar_of_part) e *= in_part;
            if (s->run[b] && (back == 1 || back == 2)) e *= tb->loop_w;
            row[hist[i + 1]] += e;
        }
        double mass = pairwise_sum(row, V);
        double div = mass > 1e-300 ? mass : 1e-300;
        if (allowed) {
            const uint8_t *ok = allowed + (size_t)b * V;
            for (int v = 0; v < V; v++) row[v] = ok[v] ? row[v] / div : 0.0;
        } else {
            for (int v = 0; v < V; v++) row[v] /= div;
        }
        int32_t prev = hist[t - 2], last = hist[t - 1];
        double sentinel = tb->sentinel_w[(size_t)(prev < 0 ? V : prev) * V + (last < 0 ? V - 1 : last)];
        if (s->closed[b] && last == tb->line_break) sentinel = tb->after_part_line_w;
        lam[b] = tb->weight * mass / (mass + sentinel);
    }
}

typedef struct {
    int32_t vocab, top_k;        /* top_k 0: no filtering */
    double temperature;          /* above 0 (greedy stays in numpy) */
    const CopyTables *tables;    /* NULL: the copy model off */
    double *z, *w, *p;           /* [V] each: scratch */
} DrawSpec;

static int descending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* One stream's draw as Sampler._draw makes it (core/sample.py), in one call where numpy made ~15
 * (each ~1 us): float64 logits, -inf where `allowed` (or NULL: all) is 0, divided by the
 * temperature where it is not 1, w = exp(z - max), mixed with the copy's prediction (state `s`)
 * as mix_weights does, the top k kept (ranked by the mixture where it mixes), then the inverse
 * CDF at u * total. The same float64 operations in the same order, so the same draws (exp is
 * libm's, which numpy's SIMD exp may differ from by an ulp). Returns -1, without a draw, where a
 * logit is NaN or the largest is not finite (a damaged model; Sampler._draw handles those). */
int64_t draw_one(const DrawSpec *d, const CopyState *s, const float *logits,
                 const uint8_t *allowed, double u) {
    int V = d->vocab;
    double *z = d->z, *w = d->w, top = -INFINITY;
    for (int v = 0; v < V; v++) {
        z[v] = allowed && !allowed[v] ? -INFINITY : (double)logits[v];
        if (d->temperature != 1.0) z[v] /= d->temperature;
        if (isnan(z[v])) return -1;
        if (z[v] > top) top = z[v];
    }
    if (!isfinite(top)) return -1;
    for (int v = 0; v < V; v++) w[v] = exp(z[v] - top);
    double lam = 0.0;
    if (d->tables) copy_predict(d->tables, s, &lam, d->p, allowed);
    if (lam != 0.0) {
        double scale = lam / (1.0 - lam) * pairwise_sum(w, V);
        for (int v = 0; v < V; v++) w[v] = w[v] + scale * d->p[v];
    }
    if (d->top_k > 0 && d->top_k < V) {
        const double *rank = lam > 0.0 ? w : z;
        double *sorted = d->p;  /* the copy's row, read already */
        memcpy(sorted, rank, sizeof(double) * V);
        qsort(sorted, V, sizeof(double), descending);
        double kth = sorted[d->top_k - 1];
        for (int v = 0; v < V; v++)
            if (!(rank[v] >= kth)) w[v] = 0.0;
    }
    for (int v = 1; v < V; v++) w[v] += w[v - 1];  /* the CDF (cumsum's order) */
    double total = w[V - 1];
    if (!(total > 0.0 && total < INFINITY)) return -1;
    double at = u * total;
    int i = 0;
    while (i < V && w[i] <= at) i++;  /* searchsorted(at, "right") */
    return i < V - 1 ? i : V - 1;
}
