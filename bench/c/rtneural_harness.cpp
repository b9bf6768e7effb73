/* RTNeural timed by bench/rtneural.py in the same run as edgernn and the C yardstick.
 *
 * Built by the bench, never shipped: RTNeural (and its Eigen) are unpacked from
 * shared/third_party into a temporary folder and compiled with
 *   c++ -O3 -march=native -std=c++17 -DRTNEURAL_USE_EIGEN=1 -DRTNEURAL_DEFAULT_ALIGNMENT=32
 *       -DEIGEN_STACK_ALLOCATION_LIMIT=0 -shared -fPIC
 *       -DRTN_LAYERS="X(0, 16, 32) X(1, 16, 32)"
 * RTN_LAYERS lists the layers compiled in, X(kind, I, H) with kind 0 = GRU, 1 = LSTM:
 * RTNeural's compile-time API fixes every size, each one is a separate
 * RTNeural::ModelT<float, I, H, RTNeural::GRULayerT<float, I, H>> (or LSTMLayerT).
 *
 * Weights arrive in torch's layout (weight_ih float32[G*H][I], weight_hh float32[G*H][H],
 * bias_ih and bias_hh float32[G*H], gates GRU r, z, n and LSTM i, f, g, o) and are
 * mapped to RTNeural's contract here (gru_eigen.h, lstm_eigen.h):
 *   GRU:  setWVals(w)[i][k], w[i][k] = weight_ih[row(k)][i]; setUVals likewise from
 *         weight_hh; setBVals({bias_ih[row(k)], bias_hh[row(k)]}); RTNeural's gate order
 *         is z, r, c, so row(k) swaps the first two blocks (k < H -> k + H, k < 2H -> k - H).
 *         RTNeural's c = tanh(Wc x + bc0 + r * (Uc h + bc1)) is torch's n (the reset gate
 *         scales the recurrent product and its bias: linear_before_reset).
 *   LSTM: setWVals/setUVals take Keras' order i, f, c, o, which is torch's i, f, g, o
 *         (RTNeural reorders internally), transposed; one bias, bias_ih + bias_hh.
 *
 * C interface (ctypes): rtn_create(kind, I, H) -> handle or NULL when that layer was not
 * compiled in; rtn_set_weights; rtn_reset (zero state); rtn_run(h, xs, ys, T) steps
 * forward() over xs float32[T][I] into ys float32[T][H] (state carried across calls);
 * rtn_free. Each step's input is copied into an aligned buffer first (forward() maps its
 * input with 32-byte alignment; a row of xs is aligned only when I is a multiple of 8).
 */
#include <cstring>
#include <vector>

#include <RTNeural/RTNeural.h>

#ifndef RTN_LAYERS
#define RTN_LAYERS X(0, 16, 32) X(1, 16, 32)
#endif

namespace {

using Mat = std::vector<std::vector<float>>;

struct Runner {
    virtual ~Runner() = default;
    virtual void set_weights(const float* w_ih, const float* w_hh, const float* b_ih,
                             const float* b_hh) = 0;
    virtual void reset() = 0;
    virtual void run(const float* xs, float* ys, int T) = 0;
};

/* torch row of RTNeural's gate row k: GRU swaps r and z; LSTM keeps the order. */
inline int torch_row(int kind, int k, int H) {
    if (kind == 0 && k < 2 * H)
        return k < H ? k + H : k - H;
    return k;
}

/* RTNeural's [n_in][G*H] from torch's [G*H][n_in]. */
Mat transposed(int kind, const float* w, int rows, int n_in, int H) {
    Mat out(n_in, std::vector<float>(rows));
    for (int i = 0; i < n_in; ++i)
        for (int k = 0; k < rows; ++k)
            out[i][k] = w[torch_row(kind, k, H) * n_in + i];
    return out;
}

template <int kind, int I, int H>
struct LayerRunner final : Runner {
    using Layer = std::conditional_t<kind == 0, RTNeural::GRULayerT<float, I, H>,
                                     RTNeural::LSTMLayerT<float, I, H>>;
    static constexpr int G = kind == 0 ? 3 : 4;
    RTNeural::ModelT<float, I, H, Layer> model;
    alignas(64) float in[I];

    void set_weights(const float* w_ih, const float* w_hh, const float* b_ih,
                     const float* b_hh) override {
        auto& layer = model.template get<0>();
        layer.setWVals(transposed(kind, w_ih, G * H, I, H));
        layer.setUVals(transposed(kind, w_hh, G * H, H, H));
        if constexpr (kind == 0) {
            Mat b(2, std::vector<float>(G * H));
            for (int k = 0; k < G * H; ++k) {
                b[0][k] = b_ih[torch_row(kind, k, H)];
                b[1][k] = b_hh[torch_row(kind, k, H)];
            }
            layer.setBVals(b);
        } else {
            std::vector<float> b(G * H);
            for (int k = 0; k < G * H; ++k)
                b[k] = b_ih[k] + b_hh[k];
            layer.setBVals(b);
        }
        model.reset();
    }

    void reset() override { model.reset(); }

    void run(const float* xs, float* ys, int T) override {
        for (int t = 0; t < T; ++t) {
            std::memcpy(in, xs + (size_t)t * I, sizeof in);
            model.forward(in);
            std::memcpy(ys + (size_t)t * H, model.getOutputs(), H * sizeof(float));
        }
    }
};

}  // namespace

extern "C" {

void* rtn_create(int kind, int I, int H) {
#define X(k, i, h) \
    if (kind == k && I == i && H == h) return static_cast<Runner*>(new LayerRunner<k, i, h>());
    RTN_LAYERS
#undef X
    return nullptr;
}

void rtn_set_weights(void* r, const float* w_ih, const float* w_hh, const float* b_ih,
                     const float* b_hh) {
    static_cast<Runner*>(r)->set_weights(w_ih, w_hh, b_ih, b_hh);
}

void rtn_reset(void* r) { static_cast<Runner*>(r)->reset(); }

void rtn_run(void* r, const float* xs, float* ys, int T) { static_cast<Runner*>(r)->run(xs, ys, T); }

void rtn_free(void* r) { delete static_cast<Runner*>(r); }

}
