/* A plain C yardstick for bench/step_latency.py: one GRU or LSTM layer stepped
 * over T timesteps, float32, PyTorch's gate order and equations.
 *
 * Built by the bench with the system C compiler: cc -O3 -march=native -shared.
 * No intrinsics, no -ffast-math: the matrix-vector products are written in
 * "axpy" form over transposed weights (w_ihP: float32[I][G*H], w_hhP:
 * float32[H][G*H]) so the compiler vectorises the inner loop over output rows
 * without reassociating a sum; tanh is Eigen's rational approximation (the
 * one RTNeural's Eigen backend and edgernn's fast path use), sigmoid(x) =
 * 0.5 + 0.5 tanh(x / 2). Sizes are run-time arguments (RTNeural fixes them at
 * compile time).
 *
 *   GRU  (gates r, z, n):  r = s(Wir x + bir + Whr h + bhr), z = s(... z ...),
 *        n = tanh(Win x + bin + r * (Whn h + bhn)),  h' = (1 - z) n + z h
 *   LSTM (gates i, f, g, o): i, f, o = s(.), g = tanh(.),  c' = f c + i g,
 *        h' = o tanh(c')
 *
 * ys receives h' of every step (float32[T][H]); h (and c) hold the state and
 * are updated in place; work is scratch of 2 * G * H floats (rounded up to 32). The LSTM sums
 * both products into one gate vector; the GRU keeps them apart (r scales Whn h).
 */
#include <stddef.h>

static inline float tanh_fast(float x) {
    const float clamp = 7.90531110763549805f;
    x = x < -clamp ? -clamp : (x > clamp ? clamp : x);
    float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

static inline float sigmoid_fast(float x) { return 0.5f + 0.5f * tanh_fast(0.5f * x); }

/* acc[0:n] += W v for W float32[n][K] packed in panels of TILE rows: panel p holds
 * W[p * TILE + r][k] at wp[(p * K + k) * TILE + r] (rows past n are zero; acc has
 * room for n rounded up to TILE). Each panel's TILE accumulators stay in registers
 * across all K columns. */
#define TILE 32
static void matvec_p(float *restrict acc, const float *restrict wp, const float *restrict v,
                     int K, int n) {
    for (int p = 0; p * TILE < n; p++) {
        float a[TILE];
        float *restrict out = acc + p * TILE;
        const float *restrict w = wp + (size_t)p * K * TILE;
        for (int r = 0; r < TILE; r++) a[r] = out[r];
        for (int k = 0; k < K; k++) {
            const float vk = v[k];
            for (int r = 0; r < TILE; r++) a[r] += w[k * TILE + r] * vk;
        }
        for (int r = 0; r < TILE; r++) out[r] = a[r];
    }
}

int gru_run(const float *w_ihP, const float *w_hhP, const float *b_ih, const float *b_hh,
            int I, int H, int T, const float *xs, float *ys, float *h, float *work) {
    float *gx = work, *gh = work + (3 * H + TILE - 1) / TILE * TILE;
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < 3 * H; r++) { gx[r] = b_ih[r]; gh[r] = b_hh[r]; }
        matvec_p(gx, w_ihP, xs + (size_t)t * I, I, 3 * H);
        matvec_p(gh, w_hhP, h, H, 3 * H);
        float *y = ys + (size_t)t * H;
        for (int j = 0; j < H; j++) {
            float r = sigmoid_fast(gx[j] + gh[j]);
            float z = sigmoid_fast(gx[H + j] + gh[H + j]);
            float n = tanh_fast(gx[2 * H + j] + r * gh[2 * H + j]);
            y[j] = (1.0f - z) * n + z * h[j];
        }
        for (int j = 0; j < H; j++) h[j] = y[j];
    }
    return 0;
}

int lstm_run(const float *w_ihP, const float *w_hhP, const float *b_ih, const float *b_hh,
             int I, int H, int T, const float *xs, float *ys, float *h, float *c,
             float *work) {
    float *g4 = work;
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < 4 * H; r++) g4[r] = b_ih[r] + b_hh[r];
        matvec_p(g4, w_ihP, xs + (size_t)t * I, I, 4 * H);
        matvec_p(g4, w_hhP, h, H, 4 * H);
        float *y = ys + (size_t)t * H;
        for (int j = 0; j < H; j++) {
            float i = sigmoid_fast(g4[j]);
            float f = sigmoid_fast(g4[H + j]);
            float g = tanh_fast(g4[2 * H + j]);
            float o = sigmoid_fast(g4[3 * H + j]);
            float cj = f * c[j] + i * g;
            c[j] = cj;
            y[j] = o * tanh_fast(cj);
        }
        for (int j = 0; j < H; j++) h[j] = y[j];
    }
    return 0;
}
