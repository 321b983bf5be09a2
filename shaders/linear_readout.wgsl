// linear_readout: y[n, o] = sum over k of x[n, k] * w[o, k] for a linear layer with few outputs
// (the readout: at most 16), without the GEMM (docs/method.md §6). gemm_register spends a
// 64x64 tile of invocations on a [N, 10] result; here one invocation holds a row's outputs and
// reads the weights from a uniform copy at offsets every invocation shares (one scalar load
// broadcast to the SIMD lanes on lavapipe, where a storage load is a loop over the lanes).
//
// The sums run exactly as gemm_register's: k in groups of four, each group's
// ((x0 w0 + x1 w1) + x2 w2) + x3 w3 added to the running sum, then the K % 4 last terms one
// by one. On spike inputs (0 or 1: every product exact, however a multiply-add is compiled)
// the result is the GEMM's bit for bit.
//
// Bindings:
//   0 uniform params : ReadoutParams
//   1 storage read   : x [N, K] f32
//   2 uniform        : w [OUTS][k_end - k_start] f32 as 4096 vec4s: columns k_start..k_end of
//                      the weight [OUTS, K], copied just before the dispatch (the host splits K
//                      into parts whose columns fit 64 KiB; k_start a multiple of 4)
//   3 storage rw     : y [N, OUTS] f32 (written; read first when resume = 1: a part after the
//                      first continues the stored sums, which an f32 store and load keep exact)
// Dispatch: one invocation per row, workgroups of 64, folded 1-D (ceil(N / 64) groups). OUTS is
// an override constant: the output loops have a constant bound and the sums stay in registers.

struct ReadoutParams {
    rows: u32,
    in_features: u32,  // K
    k_start: u32,
    k_end: u32,
    resume: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: ReadoutParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> w: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override OUTS: u32 = 10u;

//!include common/flat_index.wgsl

// Weight w[o, k] of this part (k relative to k_start).
fn weight(o: u32, k: u32) -> f32 {
    let i = o * (params.k_end - params.k_start) + k;
    return w[i / 4u][i % 4u];
}

@compute @workgroup_size(64)
fn main(inv: FlatInvocation) {
    let n = flat_index(inv, 64u);
    if (n >= params.rows) {
        return;
    }
    let row = n * params.in_features;
    var acc: array<f32, 16>;
    if (params.resume == 1u) {
        for (var o = 0u; o < OUTS; o++) {
            acc[o] = y[n * OUTS + o];
        }
    }
    // Whole groups of four up to the last multiple of 4 of K (gemm_register's k4), then one by one.
    let k4 = min(params.k_end, params.in_features & ~3u);
    var k = params.k_start;
    for (; k < k4; k += 4u) {
        let a = vec4<f32>(x[row + k], x[row + k + 1u], x[row + k + 2u], x[row + k + 3u]);
        let kk = k - params.k_start;
        for (var o = 0u; o < OUTS; o++) {
            acc[o] += a.x * weight(o, kk) + a.y * weight(o, kk + 1u) + a.z * weight(o, kk + 2u)
                + a.w * weight(o, kk + 3u);
        }
    }
    for (; k < params.k_end; k++) {
        let a = x[row + k];
        for (var o = 0u; o < OUTS; o++) {
            acc[o] += a * weight(o, k - params.k_start);
        }
    }
    for (var o = 0u; o < OUTS; o++) {
        y[n * OUTS + o] = acc[o];
    }
}
