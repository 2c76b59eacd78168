/* The int4 sampler's step (core/q4.py): one LSTM cell, then the products of its new h with W_hh
 * (int4: the next step's recurrent input) and with the output layer (int8: the logits), for a
 * batch of streams. Built by core/native.py into core/_native.so and loaded with ctypes; without
 * it the sampler uses int8 or float32.
 *
 * Why: one stream of the seed-size model (LSTM 1024) reads its 4.2 MB of int8 weights a
 * character, from L3, and per-call framework overhead adds as much again. As int4 in groups of
 * 64 columns (a float scale each) the weights take 2.2 MB, which two cores' L2 caches hold, and
 * the whole step runs here without leaving C.
 *
 * The same numbers on every x86: the products are exact integer sums (4- or 8-bit weights times
 * 8-bit activations, no saturation), and the float work is element by element with the same
 * operations in the same order (fused multiply-adds written out; -ffp-contract=off elsewhere), so
 * the plain C, AVX2, AVX-VNNI, AVX-512 VNNI and AMX kernels agree bit for bit and a seed draws the
 * same tune.
 *
 * Weights: tiles of 16 rows; a tile holds cols/8 chunks of 64 bytes; byte 4r+k of chunk j holds
 * row r's column 8j+k in its low nibble and column 8j+4+k in its high one, each as w+8 (0..15).
 * Scales: [tile][group][16 rows]. */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#ifndef FOLKGEN_NATIVE_ID
#define FOLKGEN_NATIVE_ID "unknown"
#endif
/* The sources this library was built from (core/native.py reads it in the file before loading). */
const char folkgen_native_tag[] = "folkgen-native-id:" FOLKGEN_NATIVE_ID;

#define TILE 16
#define GROUP 64
#define MAX_THREADS 8

typedef struct {
    int32_t rows;      /* 4H: W_hh's rows, int4 */
    int32_t tiles;     /* ceil(rows / TILE) */
    int32_t cols;      /* H rounded up to GROUP */
    int32_t hidden;    /* H */
    int32_t vocab;     /* V */
    int32_t pad;
    const uint8_t *w;
    const float *scale;
    const int8_t *head;        /* [V][cols]: the output layer, int8 a row (its error reaches the
                                * logits straight, and int4 there cost 0.5 % in bits per char) */
    const float *head_scale;   /* [V] */
    const float *in_table;     /* [V][4H], gates (i, f, o, g), both biases in */
    const float *b_out;        /* [V] */
} Model;

typedef struct {
    const Model *m;
    int32_t batch;
    const int8_t *aq;     /* [B][cols] */
    const int32_t *asum;  /* [B][groups]: sum of each group's activations */
    const float *ascale;  /* [B] */
    float *rec;           /* [B][4H] */
    float *logits;        /* [B][V] */
    const int64_t *ids;   /* [B] */
    float *h, *c;         /* [B][H] */
    int32_t phase;        /* run_part's */
} Job;

/* ---- the cell: gates -> c, h; h quantised to int8 (symmetric, per stream) ----
 * exp from basic operations only (Cody-Waite reduction, degree-6 polynomial; relative error
 * ~2e-7): libm's expf may differ in the last bit between machines, and tunes must not. The
 * vector versions below do the same operations in the same order, lane by lane. */

#define EXP_LO -87.0f
#define EXP_HI 87.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187045e-06f
#define P6 (1.0f / 720.0f)
#define P5 (1.0f / 120.0f)
#define P4 (1.0f / 24.0f)
#define P3 (1.0f / 6.0f)

static inline float exp_basic(float x) {
    x = x < EXP_HI ? x : EXP_HI; /* as _mm256_min_ps then _mm256_max_ps: NaN becomes EXP_HI */
    x = EXP_LO > x ? EXP_LO : x;
    float t = x * LOG2E;
    int k = (int)(t + (t >= 0.0f ? 0.5f : -0.5f));
    float kf = (float)k;
    float r = x - kf * LN2_HI;
    r = r - kf * LN2_LO;
    float p = P6;
    p = p * r + P5;
    p = p * r + P4;
    p = p * r + P3;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { float f; int32_t i; } two = { .i = (k + 127) << 23 };
    return p * two.f;
}

/* x[j] <- sigmoid(x[j]) for j < n_sig, then tanh for the n_tanh that follow. */
static void activate_plain(float *x, int n_sig, int n_tanh) {
    for (int j = 0; j < n_sig; j++) x[j] = 1.0f / (1.0f + exp_basic(-x[j]));
    for (int j = n_sig; j < n_sig + n_tanh; j++)
        x[j] = 2.0f / (1.0f + exp_basic(-2.0f * x[j])) - 1.0f;
}

/* c <- f c + i g; h <- o tanh(c) for j in [j0, H); returns max |h| over them. */
static float update_plain(const float *ifog, float *c, float *h, int H, int j0) {
    float amax = 0.0f;
    for (int j = j0; j < H; j++) {
        float cn = ifog[H + j] * c[j] + ifog[j] * ifog[3 * H + j];
        float t = 2.0f / (1.0f + exp_basic(-2.0f * cn)) - 1.0f;
        c[j] = cn;
        h[j] = ifog[2 * H + j] * t;
        float a = h[j] < 0.0f ? -h[j] : h[j];
        amax = a > amax ? a : amax;
    }
    return amax;
}

static void quantise_plain(const float *h, int8_t *q, int H, float inv) {
    for (int j = 0; j < H; j++) {
        float v = h[j] * inv;
        q[j] = (int8_t)(int)(v + (v >= 0.0f ? 0.5f : -0.5f));
    }
}

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma")))
/* AVX-VNNI: vpdpbusd on 256 bits, without AVX-512 (Intel's cores from Alder Lake on, the laptops'
 * among them; AMD's from Zen 5). */
#define AVXVNNI __attribute__((target("avx2,fma,avxvnni")))
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
AVX2 static inline __m256 exp8(__m256 x) {
    const __m256 zero = _mm256_setzero_ps();
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO), _mm256_min_ps(x, _mm256_set1_ps(EXP_HI)));
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(LOG2E));
    __m256 half = _mm256_blendv_ps(_mm256_set1_ps(-0.5f), _mm256_set1_ps(0.5f),
                                   _mm256_cmp_ps(t, zero, _CMP_GE_OQ));
    __m256i k = _mm256_cvttps_epi32(_mm256_add_ps(t, half));
    __m256 kf = _mm256_cvtepi32_ps(k);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(kf, _mm256_set1_ps(LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(kf, _mm256_set1_ps(LN2_LO)));
    __m256 p = _mm256_set1_ps(P6);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P5));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    __m256i two = _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(two));
}

AVX2 static inline __m256 sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

AVX2 static inline __m256 tanh8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), x));
    return _mm256_sub_ps(_mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(one, e)), one);
}

AVX2 static void activate_avx2(float *x, int n_sig, int n_tanh) {
    int j = 0;
    for (; j + 8 <= n_sig; j += 8) _mm256_storeu_ps(x + j, sigmoid8(_mm256_loadu_ps(x + j)));
    activate_plain(x + j, n_sig - j, 0);
    float *y = x + n_sig;
    for (j = 0; j + 8 <= n_tanh; j += 8) _mm256_storeu_ps(y + j, tanh8(_mm256_loadu_ps(y + j)));
    activate_plain(y + j, 0, n_tanh - j);
}

AVX2 static float update_avx2(const float *ifog, float *c, float *h, int H) {
    __m256 vmax = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int j = 0;
    for (; j + 8 <= H; j += 8) {
        __m256 cn = _mm256_add_ps(
            _mm256_mul_ps(_mm256_loadu_ps(ifog + H + j), _mm256_loadu_ps(c + j)),
            _mm256_mul_ps(_mm256_loadu_ps(ifog + j), _mm256_loadu_ps(ifog + 3 * H + j)));
        __m256 hn = _mm256_mul_ps(_mm256_loadu_ps(ifog + 2 * H + j), tanh8(cn));
        _mm256_storeu_ps(c + j, cn);
        _mm256_storeu_ps(h + j, hn);
        vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, hn));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    float amax = update_plain(ifog, c, h, H, j); /* the tail, where H % 8 */
    for (int k = 0; k < 8; k++) amax = lanes[k] > amax ? lanes[k] : amax;
    return amax;
}

AVX2 static void quantise_avx2(const float *h, int8_t *q, int H, float inv) {
    int j = 0;
    const __m256 vinv = _mm256_set1_ps(inv), zero = _mm256_setzero_ps();
    for (; j + 8 <= H; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(h + j), vinv);
        __m256 half = _mm256_blendv_ps(_mm256_set1_ps(-0.5f), _mm256_set1_ps(0.5f),
                                       _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
        int32_t k[8];
        _mm256_storeu_si256((__m256i *)k, _mm256_cvttps_epi32(_mm256_add_ps(v, half)));
        for (int i = 0; i < 8; i++) q[j + i] = (int8_t)k[i];
    }
    quantise_plain(h + j, q + j, H - j, inv);
}
#endif

/* The cell of every stream: rec (the pending W_hh h) plus the character's row of the input
 * table, activated in place (rec is rewritten by the product next), then c, h and h's int8. */
static void cell(int vec, const Model *m, const int64_t *ids, float *h, float *c, float *rec,
                 int8_t *aq, int32_t *asum, float *ascale, int b0, int b1) {
    int H = m->hidden, cols = m->cols, groups = cols / GROUP;
    for (int b = b0; b < b1; b++) {
        const float *tab = m->in_table + (size_t)ids[b] * 4 * H;
        float *g = rec + (size_t)b * 4 * H, *hb = h + (size_t)b * H, *cb = c + (size_t)b * H;
        for (int j = 0; j < 4 * H; j++) g[j] = tab[j] + g[j];
        float amax;
#if defined(__x86_64__)
        if (vec) {
            activate_avx2(g, 3 * H, H);
            amax = update_avx2(g, cb, hb, H);
        } else
#endif
        {
            activate_plain(g, 3 * H, H);
            amax = update_plain(g, cb, hb, H, 0);
        }
        float s = amax > 0.0f ? amax / 127.0f : 1.0f;
        int8_t *q = aq + (size_t)b * cols;
#if defined(__x86_64__)
        if (vec)
            quantise_avx2(hb, q, H, 1.0f / s);
        else
#endif
            quantise_plain(hb, q, H, 1.0f / s);
        for (int j = H; j < cols; j++) q[j] = 0;
        for (int gi = 0; gi < groups; gi++) {
            int32_t sum = 0;
            for (int j = 0; j < GROUP; j++) sum += q[gi * GROUP + j];
            asum[(size_t)b * groups + gi] = sum;
        }
        ascale[b] = s;
    }
}

/* ---- the product: rows [t0, t1) tiles of W times every stream's quantised h ---- */

static inline void store_rows(const Job *job, int tile, int b, const float *v) {
    const Model *m = job->m;
    int n = m->rows - tile * TILE < TILE ? m->rows - tile * TILE : TILE;
    memcpy(job->rec + (size_t)b * m->rows + (size_t)tile * TILE, v, sizeof(float) * (size_t)n);
}

static inline void store_logit(const Job *job, int b, int v, int32_t sum) {
    const Model *m = job->m;
    job->logits[(size_t)b * m->vocab + v] =
        (float)sum * m->head_scale[v] * job->ascale[b] + m->b_out[v];
}

/* The head's rows [v0, v1) for every stream: exact int32 sums, then the same two products and
 * the bias for every kernel (store_logit). */
static void head_plain(const Job *job, int v0, int v1) {
    const Model *m = job->m;
    for (int b = 0; b < job->batch; b++) {
        const int8_t *a = job->aq + (size_t)b * m->cols;
        for (int v = v0; v < v1; v++) {
            const int8_t *w = m->head + (size_t)v * m->cols;
            int32_t sum = 0;
            for (int j = 0; j < m->cols; j++) sum += (int32_t)w[j] * (int32_t)a[j];
            store_logit(job, b, v, sum);
        }
    }
}

#if defined(__x86_64__)
/* |w| times a with w's sign (vpmaddubsw's unsigned side must be the weights' magnitude): pair
 * sums reach 2 * 127 * 127, under int16's limit, so no sum saturates. */
AVX2 static void head_avx2(const Job *job, int v0, int v1) {
    const Model *m = job->m;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < job->batch; b++) {
        const int8_t *a = job->aq + (size_t)b * m->cols;
        for (int v = v0; v < v1; v++) {
            const int8_t *w = m->head + (size_t)v * m->cols;
            __m256i acc = _mm256_setzero_si256();
            for (int j = 0; j < m->cols; j += 32) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)(w + j));
                __m256i av = _mm256_loadu_si256((const __m256i *)(a + j));
                __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(av, wv));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
            }
            int32_t lanes[8], sum = 0;
            _mm256_storeu_si256((__m256i *)lanes, acc);
            for (int k = 0; k < 8; k++) sum += lanes[k];
            store_logit(job, b, v, sum);
        }
    }
}

/* Weights made unsigned (w + 128, by flipping the top bit) for vpdpbusd; 128 times the sum of
 * the activations taken off after. */
VNNI static void head_vnni(const Job *job, int v0, int v1) {
    const Model *m = job->m;
    int groups = m->cols / GROUP;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < job->batch; b++) {
        const int8_t *a = job->aq + (size_t)b * m->cols;
        int32_t total = 0;
        for (int g = 0; g < groups; g++) total += job->asum[(size_t)b * groups + g];
        for (int v = v0; v < v1; v++) {
            const int8_t *w = m->head + (size_t)v * m->cols;
            __m512i acc = _mm512_setzero_si512();
            for (int j = 0; j < m->cols; j += 64) {
                __m512i wv = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w + j)), flip);
                acc = _mm512_dpbusd_epi32(acc, wv, _mm512_loadu_si512((const void *)(a + j)));
            }
            store_logit(job, b, v, _mm512_reduce_add_epi32(acc) - 128 * total);
        }
    }
}
#endif

static void product_plain(const Job *job, int t0, int t1) {
    const Model *m = job->m;
    int chunks = m->cols / 8, groups = m->cols / GROUP;
    for (int t = t0; t < t1; t++) {
        const uint8_t *wt = m->w + (size_t)t * chunks * 64;
        const float *st = m->scale + (size_t)t * groups * TILE;
        for (int b = 0; b < job->batch; b++) {
            const int8_t *a = job->aq + (size_t)b * m->cols;
            float acc[TILE] = {0};
            for (int g = 0; g < groups; g++) {
                int32_t isum[TILE] = {0};
                for (int j = g * (GROUP / 8); j < (g + 1) * (GROUP / 8); j++) {
                    const uint8_t *x = wt + (size_t)j * 64;
                    for (int r = 0; r < TILE; r++)
                        for (int k = 0; k < 4; k++) {
                            uint8_t byte = x[4 * r + k];
                            isum[r] += (byte & 15) * a[8 * j + k] + (byte >> 4) * a[8 * j + 4 + k];
                        }
                }
                int32_t off = 8 * job->asum[(size_t)b * groups + g];
                for (int r = 0; r < TILE; r++)
                    acc[r] = fmaf((float)(isum[r] - off), st[g * TILE + r], acc[r]);
            }
            for (int r = 0; r < TILE; r++) acc[r] = acc[r] * job->ascale[b];
            store_rows(job, t, b, acc);
        }
    }
}

#if defined(__x86_64__)
/* The float steps of one group's int32 sums for streams b0 .. b0 + NB - 1 (both AVX2 tiles):
 * less 8 times the activations' sum (the weights are stored as w + 8), times the rows' scales. */
AVX2 static inline __attribute__((always_inline)) void group_avx2(
    const Job *job, const float *st, int g, int b0, const int NB, __m256i i32[][2],
    __m256 acc[][2]) {
    int groups = job->m->cols / GROUP;
    __m256 sc0 = _mm256_loadu_ps(st + g * TILE), sc1 = _mm256_loadu_ps(st + g * TILE + 8);
    for (int k = 0; k < NB; k++) {
        __m256i off = _mm256_set1_epi32(8 * job->asum[(size_t)(b0 + k) * groups + g]);
        acc[k][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(i32[k][0], off)),
                                    sc0, acc[k][0]);
        acc[k][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(i32[k][1], off)),
                                    sc1, acc[k][1]);
    }
}

/* A tile's 16 rows of each stream, times its activations' scale, into rec. */
AVX2 static inline __attribute__((always_inline)) void store_avx2(
    const Job *job, int t, int b0, const int NB, __m256 acc[][2]) {
    for (int k = 0; k < NB; k++) {
        __m256 s = _mm256_set1_ps(job->ascale[b0 + k]);
        float v[TILE];
        _mm256_storeu_ps(v, _mm256_mul_ps(acc[k][0], s));
        _mm256_storeu_ps(v + 8, _mm256_mul_ps(acc[k][1], s));
        store_rows(job, t, b0 + k, v);
    }
}

/* AVX2: vpmaddubsw (4-bit weights unsigned, activations signed; a pair sums to at most
 * 2 * 15 * 127 = 3810) into int16 sums of four chunks (at most 30480), then int32.
 *
 * One chunk (8 columns) of a tile's 16 rows times four streams, into int16 sums s[stream][half]:
 * each broadcast activation meets both row halves (rows 0-7, 8-15), so a vpbroadcastd serves two
 * vpmaddubsw, and the decoded weights serve four streams. The empty asm keeps each sum's adds in
 * order: GCC otherwise adds the low and high nibbles' products first, which needs more registers
 * than AVX2's 16, and spilled the sums (16 streams of the seed-size model, one thread, on a Zen 5
 * core: 520 us a step, against 560 with the spills and 636 for rows 0-7 then 8-15, each
 * broadcast serving one vpmaddubsw). */
#define CHUNK4_AVX2(OP, x, a, cols, nib, s)                                                   \
    do {                                                                                      \
        __m256i w0_ = _mm256_loadu_si256((const __m256i *)(x));                               \
        __m256i w1_ = _mm256_loadu_si256((const __m256i *)((x) + 32));                        \
        for (int nb_ = 0; nb_ < 2; nb_++) {                                                   \
            __m256i l0_ = _mm256_and_si256(nb_ ? _mm256_srli_epi16(w0_, 4) : w0_, nib);       \
            __m256i l1_ = _mm256_and_si256(nb_ ? _mm256_srli_epi16(w1_, 4) : w1_, nib);       \
            for (int k_ = 0; k_ < 4; k_++) {                                                  \
                int32_t v_;                                                                   \
                memcpy(&v_, (a) + (size_t)k_ * (cols) + 4 * nb_, 4);                          \
                __m256i b_ = _mm256_set1_epi32(v_);                                           \
                __m256i p0_ = _mm256_maddubs_epi16(l0_, b_), p1_ = _mm256_maddubs_epi16(l1_, b_); \
                if (OP || nb_) {                                                              \
                    s[k_][0] = _mm256_add_epi16(s[k_][0], p0_);                               \
                    s[k_][1] = _mm256_add_epi16(s[k_][1], p1_);                               \
                } else {                                                                      \
                    s[k_][0] = p0_;                                                           \
                    s[k_][1] = p1_;                                                           \
                }                                                                             \
                __asm__("" : "+x"(s[k_][0]), "+x"(s[k_][1]));                                 \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* A tile's 16 rows for four streams b0 .. b0 + 3: four chunks' int16 sums, widened to int32 twice
 * a group, then group_avx2's float steps. */
AVX2 static void tile4_avx2(const Job *job, int t, int b0) {
    const Model *m = job->m;
    int chunks = m->cols / 8, groups = m->cols / GROUP;
    const size_t cols = (size_t)m->cols;
    const __m256i nib = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const uint8_t *wt = m->w + (size_t)t * chunks * 64;
    const float *st = m->scale + (size_t)t * groups * TILE;
    const int8_t *a0 = job->aq + (size_t)b0 * cols;
    __m256 acc[4][2];
    for (int k = 0; k < 4; k++) acc[k][0] = acc[k][1] = _mm256_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m256i i32[4][2], s16[4][2];
        for (int half = 0; half < 2; half++) {
            int j0 = g * (GROUP / 8) + half * (GROUP / 16);
            CHUNK4_AVX2(0, wt + (size_t)j0 * 64, a0 + 8 * j0, cols, nib, s16);
#pragma GCC unroll 1
            for (int j = j0 + 1; j < j0 + GROUP / 16; j++)
                CHUNK4_AVX2(1, wt + (size_t)j * 64, a0 + 8 * j, cols, nib, s16);
            for (int k = 0; k < 4; k++)
                for (int r = 0; r < 2; r++) {
                    __m256i w = _mm256_madd_epi16(s16[k][r], ones);
                    i32[k][r] = half ? _mm256_add_epi32(i32[k][r], w) : w;
                }
        }
        group_avx2(job, st, g, b0, 4, i32, acc);
    }
    store_avx2(job, t, b0, 4, acc);
}

/* AVX2, streams one at a time (a batch's last few): a tile's 16 rows for streams b0 .. b0 + NB - 1,
 * both row halves at once; see CHUNK4_AVX2 for the sums' bounds. */
AVX2 static inline __attribute__((always_inline)) void tile_avx2(
    const Job *job, int t, int b0, const int NB) {
    const Model *m = job->m;
    int chunks = m->cols / 8, groups = m->cols / GROUP;
    const __m256i nib = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const uint8_t *wt = m->w + (size_t)t * chunks * 64;
    const float *st = m->scale + (size_t)t * groups * TILE;
    __m256 acc[4][2];
    for (int k = 0; k < NB; k++) acc[k][0] = acc[k][1] = _mm256_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m256i i32[4][2];
        for (int k = 0; k < NB; k++) i32[k][0] = i32[k][1] = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            int j0 = g * (GROUP / 8) + half * (GROUP / 16);
            __m256i s16[4][2]; /* both row halves at once */
            for (int k = 0; k < NB; k++) s16[k][0] = s16[k][1] = _mm256_setzero_si256();
            for (int j = j0; j < j0 + GROUP / 16; j++) {
                const uint8_t *x = wt + (size_t)j * 64;
                __m256i x0 = _mm256_loadu_si256((const __m256i *)x);
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
                __m256i lo0 = _mm256_and_si256(x0, nib), hi0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), nib);
                __m256i lo1 = _mm256_and_si256(x1, nib), hi1 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), nib);
                for (int k = 0; k < NB; k++) {
                    const int8_t *a = job->aq + (size_t)(b0 + k) * m->cols + 8 * j;
                    int32_t alo, ahi;
                    memcpy(&alo, a, 4);
                    memcpy(&ahi, a + 4, 4);
                    __m256i blo = _mm256_set1_epi32(alo), bhi = _mm256_set1_epi32(ahi);
                    s16[k][0] = _mm256_add_epi16(s16[k][0], _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo0, blo), _mm256_maddubs_epi16(hi0, bhi)));
                    s16[k][1] = _mm256_add_epi16(s16[k][1], _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo1, blo), _mm256_maddubs_epi16(hi1, bhi)));
                }
            }
            for (int k = 0; k < NB; k++) {
                i32[k][0] = _mm256_add_epi32(i32[k][0], _mm256_madd_epi16(s16[k][0], ones));
                i32[k][1] = _mm256_add_epi32(i32[k][1], _mm256_madd_epi16(s16[k][1], ones));
            }
        }
        group_avx2(job, st, g, b0, NB, i32, acc);
    }
    store_avx2(job, t, b0, NB, acc);
}

/* AVX-VNNI: vpdpbusd adds each row's four products into its int32 sum in one instruction
 * (AVX2 takes a vpmaddubsw and a vpaddw for as many, and a vpmaddwd after), unsigned weights
 * (w + 8) by signed activations as in the AVX-512 kernel. For streams b0 .. b0 + NB - 1, both
 * halves of a chunk (rows 0-7, 8-15) at once: the group's sums stay in registers through its
 * chunks, the float accumulators go to the stack between groups (rows 0-7 then 8-15, as the
 * AVX2 kernel does, was no faster: 16 streams of the seed-size model ~280 us a step either
 * way, and one stream 40 against 34 us). */
AVXVNNI static inline __attribute__((always_inline)) void tile_avxvnni(
    const Job *job, int t, int b0, const int NB) {
    const Model *m = job->m;
    int chunks = m->cols / 8, groups = m->cols / GROUP;
    const __m256i nib = _mm256_set1_epi8(15);
    const uint8_t *wt = m->w + (size_t)t * chunks * 64;
    const float *st = m->scale + (size_t)t * groups * TILE;
    const int8_t *a0 = job->aq + (size_t)b0 * m->cols;
    __m256 acc[4][2];
    for (int k = 0; k < NB; k++) acc[k][0] = acc[k][1] = _mm256_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m256i s[4][2];
        for (int k = 0; k < NB; k++) s[k][0] = s[k][1] = _mm256_setzero_si256();
        for (int j = g * (GROUP / 8); j < (g + 1) * (GROUP / 8); j++) {
            const uint8_t *x = wt + (size_t)j * 64;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)x);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
            __m256i lo0 = _mm256_and_si256(x0, nib), hi0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), nib);
            __m256i lo1 = _mm256_and_si256(x1, nib), hi1 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), nib);
            for (int k = 0; k < NB; k++) {
                int32_t alo, ahi;
                memcpy(&alo, a0 + (size_t)k * m->cols + 8 * j, 4);
                memcpy(&ahi, a0 + (size_t)k * m->cols + 8 * j + 4, 4);
                __m256i blo = _mm256_set1_epi32(alo), bhi = _mm256_set1_epi32(ahi);
                s[k][0] = _mm256_dpbusd_avx_epi32(s[k][0], lo0, blo);
                s[k][1] = _mm256_dpbusd_avx_epi32(s[k][1], lo1, blo);
                s[k][0] = _mm256_dpbusd_avx_epi32(s[k][0], hi0, bhi);
                s[k][1] = _mm256_dpbusd_avx_epi32(s[k][1], hi1, bhi);
            }
        }
        group_avx2(job, st, g, b0, NB, s, acc);
    }
    store_avx2(job, t, b0, NB, acc);
}

/* Tiles [t0, t1) for every stream: four at a time (TILE4), then one by one. */
#define PRODUCT_BY_FOURS(TARGET, NAME, TILE4, TILE_FN)                                  \
    TARGET static void NAME(const Job *job, int t0, int t1) {                           \
        for (int t = t0; t < t1; t++) {                                                 \
            int b = 0;                                                                  \
            for (; b + 4 <= job->batch; b += 4) TILE4(job, t, b);                       \
            for (; b < job->batch; b++) TILE_FN(job, t, b, 1);                          \
        }                                                                               \
    }

AVXVNNI static void tile4_avxvnni(const Job *job, int t, int b0) { tile_avxvnni(job, t, b0, 4); }
PRODUCT_BY_FOURS(AVXVNNI, product_avxvnni, tile4_avxvnni, tile_avxvnni)
PRODUCT_BY_FOURS(AVX2, product_avx2, tile4_avx2, tile_avx2)

/* One tile's 16 rows for streams b0 .. b0 + NB - 1 (NB a constant where it is inlined, so the
 * sums stay in registers). */
VNNI static inline __attribute__((always_inline)) void tile_vnni(
    const Job *job, int t, int b0, const int NB) {
    const Model *m = job->m;
    int chunks = m->cols / 8, groups = m->cols / GROUP;
    const __m512i nib = _mm512_set1_epi8(15);
    const uint8_t *wt = m->w + (size_t)t * chunks * 64;
    const float *st = m->scale + (size_t)t * groups * TILE;
    const int8_t *a0 = job->aq + (size_t)b0 * m->cols;
    __m512 acc[8];
    for (int k = 0; k < NB; k++) acc[k] = _mm512_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m512i isum[8];
        for (int k = 0; k < NB; k++) isum[k] = _mm512_setzero_si512();
        for (int j = g * (GROUP / 8); j < (g + 1) * (GROUP / 8); j++) {
            __m512i x = _mm512_loadu_si512((const void *)(wt + (size_t)j * 64));
            __m512i lo = _mm512_and_si512(x, nib);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), nib);
            for (int k = 0; k < NB; k++) {
                int32_t alo, ahi;
                memcpy(&alo, a0 + (size_t)k * m->cols + 8 * j, 4);
                memcpy(&ahi, a0 + (size_t)k * m->cols + 8 * j + 4, 4);
                isum[k] = _mm512_dpbusd_epi32(isum[k], lo, _mm512_set1_epi32(alo));
                isum[k] = _mm512_dpbusd_epi32(isum[k], hi, _mm512_set1_epi32(ahi));
            }
        }
        __m512 sc = _mm512_loadu_ps(st + g * TILE);
        for (int k = 0; k < NB; k++) {
            __m512i off = _mm512_set1_epi32(8 * job->asum[(size_t)(b0 + k) * groups + g]);
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[k], off)), sc,
                                     acc[k]);
        }
    }
    for (int k = 0; k < NB; k++) {
        float v[TILE];
        _mm512_storeu_ps(v, _mm512_mul_ps(acc[k], _mm512_set1_ps(job->ascale[b0 + k])));
        store_rows(job, t, b0 + k, v);
    }
}

VNNI static void product_vnni(const Job *job, int t0, int t1) {
    for (int t = t0; t < t1; t++) {
        int b = 0;
        for (; b + 8 <= job->batch; b += 8) tile_vnni(job, t, b, 8);
        for (; b + 4 <= job->batch; b += 4) tile_vnni(job, t, b, 4);
        for (; b < job->batch; b++) tile_vnni(job, t, b, 1);
    }
}

/* AMX (Sapphire Rapids and later): a tile multiply of 16 streams by 16 rows by 64 columns
 * (one group), signed activations by unsigned weights (w + 8) as in the VNNI kernel, the same
 * sums taken off and the same float steps after. Worth it from 4 streams. */
#define AMX_MIN_STREAMS 4
#define AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw")))
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;

static int amx_allowed = 0; /* the kernel granted this process the tile state */

static int amx_request(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 24)) || !(d & (1u << 25))) return 0; /* AMX-TILE, AMX-INT8 */
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}

/* Unpacks group g of a tile into the B layout: chunk j's low nibbles are the tile's row 2j (4
 * columns of each of the 16 rows, as AMX reads them), its high nibbles row 2j + 1. */
AMX static inline void amx_unpack(const uint8_t *wt, int g, uint8_t *wbuf) {
    const __m512i nib = _mm512_set1_epi8(15);
    for (int jj = 0; jj < GROUP / 8; jj++) {
        __m512i x = _mm512_loadu_si512((const void *)(wt + (size_t)(g * 8 + jj) * 64));
        _mm512_store_si512((void *)(wbuf + 128 * jj), _mm512_and_si512(x, nib));
        _mm512_store_si512((void *)(wbuf + 128 * jj + 64),
                           _mm512_and_si512(_mm512_srli_epi16(x, 4), nib));
    }
}

/* Group g's sums into cbuf on tiles C, A, B (two such sets alternate, so that one group's tile
 * work runs while the float work of the one before it does). */
#define AMX_GROUP(C, A, B, g, wbuf, cbuf)                                                  \
    do {                                                                                   \
        amx_unpack(wt, (g), (wbuf));                                                       \
        _tile_zero(C);                                                                     \
        _tile_loadd(A, a + (g) * GROUP, m->cols);                                          \
        _tile_loadd(B, (wbuf), 64);                                                        \
        _tile_dpbsud(C, A, B);                                                             \
        _tile_stored(C, (cbuf), 64);                                                       \
    } while (0)

AMX static void product_amx(const Job *job, int t0, int t1) {
    /* The tile configuration is loaded on every call and released at the end: other code on
     * this thread (torch's oneDNN kernels) loads and releases its own. */
    int configured_rows = 0;
    const Model *m = job->m;
    int chunks = m->cols / 8, groups = m->cols / GROUP;
    uint8_t wbuf[2][16 * 64] __attribute__((aligned(64)));
    int32_t cbuf[2][16 * 16] __attribute__((aligned(64)));
    for (int b0 = 0; b0 < job->batch; b0 += 16) {
        int M = job->batch - b0 < 16 ? job->batch - b0 : 16;
        if (configured_rows != M) {
            TileConfig cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.palette = 1;
            for (int i = 0; i < 6; i++) {
                cfg.rows[i] = (uint8_t)(i % 3 == 2 ? 16 : M); /* C, A: a row a stream */
                cfg.colsb[i] = 64;
            }
            _tile_loadconfig(&cfg);
            configured_rows = M;
        }
        const int8_t *a = job->aq + (size_t)b0 * m->cols;
        const int32_t *as = job->asum + (size_t)b0 * groups;
        for (int t = t0; t < t1; t++) {
            const uint8_t *wt = m->w + (size_t)t * chunks * 64;
            const float *st = m->scale + (size_t)t * groups * TILE;
            __m512 acc[16];
            for (int k = 0; k < M; k++) acc[k] = _mm512_setzero_ps();
            AMX_GROUP(0, 1, 2, 0, wbuf[0], cbuf[0]);
            for (int g = 0; g < groups; g++) {
                if (g + 1 < groups) {
                    if ((g + 1) & 1)
                        AMX_GROUP(3, 4, 5, g + 1, wbuf[1], cbuf[1]);
                    else
                        AMX_GROUP(0, 1, 2, g + 1, wbuf[0], cbuf[0]);
                }
                const int32_t *cb = cbuf[g & 1];
                __m512 sc = _mm512_loadu_ps(st + g * TILE);
                for (int k = 0; k < M; k++) {
                    __m512i dot = _mm512_sub_epi32(_mm512_load_si512((const void *)(cb + 16 * k)),
                                                   _mm512_set1_epi32(8 * as[(size_t)k * groups + g]));
                    acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[k]);
                }
            }
            for (int k = 0; k < M; k++) {
                float v[TILE];
                _mm512_storeu_ps(v, _mm512_mul_ps(acc[k], _mm512_set1_ps(job->ascale[b0 + k])));
                store_rows(job, t, b0 + k, v);
            }
        }
    }
    _tile_release();
}
#endif

/* ---- kernels: 0 plain C, 1 AVX2, 2 AVX-VNNI, 3 AVX-512 with VNNI, 4 that and AMX ---- */

#define K_PLAIN 0
#define K_AVX2 1
#define K_AVXVNNI 2
#define K_VNNI 3
#define K_AMX 4
#define K_COUNT 5

static int q4_supports(int k) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    unsigned a, b, c, d;
    switch (k) {
    case K_PLAIN: return 1;
    case K_AVX2: return avx2;
    case K_AVXVNNI: /* CPUID.(7,1):EAX bit 4; the YMM state the OS keeps is AVX2's */
        return avx2 && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
    case K_VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    case K_AMX:
        if (!q4_supports(K_VNNI)) return 0;
        if (!amx_allowed) amx_allowed = amx_request();
        return amx_allowed;
    }
    return 0;
#else
    return k == K_PLAIN;
#endif
}

/* The fastest kernel this CPU runs: the last one supported. */
static int q4_best_kernel(void) {
    int best = K_PLAIN;
    for (int k = K_PLAIN + 1; k < K_COUNT; k++)
        if (q4_supports(k)) best = k;
    return best;
}

static int kernel = -1;

/* Tiles [t0, t1) of the product, by the kernel in force. */
static void product(const Job *job, int t0, int t1) {
#if defined(__x86_64__)
    if (kernel == K_AMX && job->batch >= AMX_MIN_STREAMS) { product_amx(job, t0, t1); return; }
    if (kernel >= K_VNNI) { product_vnni(job, t0, t1); return; }
    if (kernel == K_AVXVNNI) { product_avxvnni(job, t0, t1); return; }
    if (kernel == K_AVX2) { product_avx2(job, t0, t1); return; }
#endif
    product_plain(job, t0, t1);
}

static void head(const Job *job, int v0, int v1) {
#if defined(__x86_64__)
    if (kernel >= K_VNNI) { head_vnni(job, v0, v1); return; }
    if (kernel >= K_AVX2) { head_avx2(job, v0, v1); return; }
#endif
    head_plain(job, v0, v1);
}

/* A product left running while the caller draws (q4_step's `ahead`): its tiles are claimed a few
 * at a time, by the workers from the first, by the caller from the last when it comes back
 * (join), so each core keeps to much the same tiles from step to step, and their weights to its
 * caches. `span` packs the first unclaimed tile (high half) and one past the last (low). */
#define CLAIM 4
static atomic_uint_fast64_t span;

static int claim(int from_front, int *t0, int *t1) {
    uint_fast64_t now = atomic_load(&span), next;
    int lo, hi;
    do {
        lo = (int)(now >> 32), hi = (int)(now & 0xffffffffu);
        if (lo >= hi) return 0;
        if (from_front) *t0 = lo, *t1 = hi - lo < CLAIM ? hi : lo + CLAIM;
        else *t1 = hi, *t0 = hi - lo < CLAIM ? lo : hi - CLAIM;
        next = from_front ? ((uint_fast64_t)*t1 << 32) | (uint_fast64_t)hi
                          : ((uint_fast64_t)lo << 32) | (uint_fast64_t)*t0;
    } while (!atomic_compare_exchange_weak(&span, &now, next));
    return 1;
}

/* Phases: 0 the cells (split by streams), 1 the head and the product (split by rows), 2 the
 * product's claimed tiles. */
static void run_part(const Job *job, int part, int parts) {
    if (job->phase == 0) {
        int b0 = job->batch * part / parts, b1 = job->batch * (part + 1) / parts;
        cell(kernel > 0, job->m, job->ids, job->h, job->c, job->rec,
             (int8_t *)job->aq, (int32_t *)job->asum, (float *)job->ascale, b0, b1);
        return;
    }
    int t0, t1;
    if (job->phase == 2) {
        while (claim(part > 0, &t0, &t1)) product(job, t0, t1);
        return;
    }
    head(job, job->m->vocab * part / parts, job->m->vocab * (part + 1) / parts);
    t0 = (int)((int64_t)job->m->tiles * part / parts);
    t1 = (int)((int64_t)job->m->tiles * (part + 1) / parts);
    product(job, t0, t1);
}

/* ---- a small pool: workers spin briefly between steps (a stream's next step comes within
 * microseconds), then sleep on a futex so an idle sampler costs no CPU ---- */

static Job job;
static atomic_uint job_gen;
static atomic_int job_done;
static atomic_int sleepers;
static int threads = 0; /* parts a step is split into: the caller and threads - 1 workers */
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static int in_flight = 0; /* a product posted ahead and not yet joined (under call_lock) */
static void join(void);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void relax(void) {
#if defined(__x86_64__)
    _mm_pause();
#else
    sched_yield();
#endif
}

static unsigned pool_start_gen; /* job_gen when the pool started: a worker's first "seen" (read
                                   * as it starts, a job posted before then would be missed) */

static void *worker(void *arg) {
    int part = (int)(intptr_t)arg;
    unsigned seen = pool_start_gen;
    for (;;) {
        double since = now_s();
        int spins = 0;
        unsigned gen;
        while ((gen = atomic_load(&job_gen)) == seen) {
            if (++spins % 256 == 0 && now_s() - since > 2e-3) {
                atomic_fetch_add(&sleepers, 1);
                if (atomic_load(&job_gen) == seen)
                    syscall(SYS_futex, &job_gen, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
                atomic_fetch_sub(&sleepers, 1);
                since = now_s();
            } else {
                relax();
            }
        }
        seen = gen;
        run_part(&job, part, threads);
        atomic_fetch_add(&job_done, 1);
    }
    return NULL;
}

/* Fork: the lock is taken around it so that no step is half done in the child, whose pool is
 * forgotten (a forked child has no workers: its first step starts a pool of its own). */
static void before_fork(void) {
    pthread_mutex_lock(&call_lock);
    join();
}
static void after_fork_parent(void) { pthread_mutex_unlock(&call_lock); }
static void after_fork_child(void) {
    pthread_mutex_init(&call_lock, NULL);
    threads = 0;
    in_flight = 0;
    atomic_store(&sleepers, 0);
}

static void start_pool(int wanted) {
    static int atfork_set = 0;
    if (!atfork_set) {
        pthread_atfork(before_fork, after_fork_parent, after_fork_child);
        atfork_set = 1;
    }
    threads = 1;
    pool_start_gen = atomic_load(&job_gen);
    for (int i = 1; i < wanted && i < MAX_THREADS; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, (void *)(intptr_t)threads) == 0) threads++;
        pthread_attr_destroy(&attr);
    }
}

/* Hands a job to the workers (who run parts 1 .. threads - 1). */
static void post(const Job *j) {
    job = *j;
    atomic_store(&job_done, 0);
    atomic_fetch_add(&job_gen, 1);
    if (atomic_load(&sleepers) > 0)
        syscall(SYS_futex, &job_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Waits for the workers to finish the job posted. */
static void wait_workers(void) {
    int spins = 0;
    while (atomic_load(&job_done) < threads - 1)
        if (++spins % 1024 == 0) sched_yield(); else relax();
}

/* Runs a job over the caller and the workers, returning when all parts are done. */
static void dispatch(const Job *j) {
    if (threads <= 1) {
        run_part(j, 0, 1);
        return;
    }
    post(j);
    run_part(j, 0, threads);
    wait_workers();
}

/* Finishes a product left running, taking its tiles from the last. Under call_lock. */
static void join(void) {
    if (!in_flight) return;
    run_part(&job, 0, threads);
    wait_workers();
    in_flight = 0;
}

/* Threads to split a step over (1: none), and the kernel (-1, or one this CPU lacks: the best it
 * has). Takes effect on the next step; a pool once started keeps its threads. Returns the
 * kernel. */
int q4_configure(int wanted_threads, int wanted_kernel) {
    pthread_mutex_lock(&call_lock);
    join();
    int ok = wanted_kernel >= 0 && wanted_kernel < K_COUNT && q4_supports(wanted_kernel);
    kernel = ok ? wanted_kernel : q4_best_kernel();
    if (threads == 0) start_pool(wanted_threads < 1 ? 1 : wanted_threads);
    pthread_mutex_unlock(&call_lock);
    return kernel;
}

/* 1 where this CPU runs kernel k. */
int q4_supported(int k) {
    pthread_mutex_lock(&call_lock);
    int ok = k >= 0 && k < K_COUNT && q4_supports(k);
    pthread_mutex_unlock(&call_lock);
    return ok;
}

int q4_threads(void) { return threads < 1 ? 1 : threads; }
int q4_kernel(void) { return kernel; }

/* Waits for a product left running by a step `ahead`: its rec is then whole. */
void q4_settle(void) {
    pthread_mutex_lock(&call_lock);
    join();
    pthread_mutex_unlock(&call_lock);
}

/* One step of `batch` streams: reads ids and the pending product in rec; writes h, c, the next
 * pending product into rec and the logits (with the head's bias). aq/asum/ascale: workspace.
 * With `ahead` (and a pool), returns once the logits are made, the workers making rec
 * meanwhile: the caller draws the next characters while they work. Until the next step or
 * q4_settle, rec is not to be read, and no array of the step freed. Returns -1, doing nothing,
 * where an id is outside the vocabulary. */
int q4_step(const Model *m, int batch, const int64_t *ids, float *h, float *c, float *rec,
            float *logits, int8_t *aq, int32_t *asum, float *ascale, int ahead) {
    for (int b = 0; b < batch; b++)
        if (ids[b] < 0 || ids[b] >= m->vocab) return -1;
    pthread_mutex_lock(&call_lock);
    if (threads == 0) {
        pthread_mutex_unlock(&call_lock);
        q4_configure(1, -1);
        pthread_mutex_lock(&call_lock);
    }
    join();
    Job j = {m, batch, aq, asum, ascale, rec, logits, ids, h, c, 0};
    if (batch > 1) dispatch(&j); else run_part(&j, 0, 1);
    if (ahead && threads > 1) {
        j.phase = 2;
        atomic_store(&span, (uint_fast64_t)m->tiles);
        post(&j);
        in_flight = 1;
        head(&j, 0, m->vocab);
    } else {
        j.phase = 1;
        dispatch(&j);
    }
    pthread_mutex_unlock(&call_lock);
    return 0;
}
