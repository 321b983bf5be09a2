// packed_conv_input_grad: the input gradient of a binary conv, its weights read as sign bits
// (docs/method.md §3, §7): with W_b[co, ci, kh, kw] = gamma[co] * sign(W) (sign(0) = +1),
// dL/dx[n, ci, iy, ix] = sum over kh, co, kw (taps that reach the pixel) of
// W_b[co, ci, kh, kw] * g[n, co, oy, ox],  oy * stride - pad + kh = iy (same for x).
// The float path multiplies W_b^T by g into im2col-shaped columns (C_in*k*k rows of N*HW
// floats) and folds them back with col2im; here each invocation sums its pixels' taps
// directly, and one 32-bit word of `pack_weights` gives the signs of 32 input channels, so a
// tap costs one gradient load per pixel for 32 sign flips and adds.
//
// What costs on lavapipe is the per-invocation loads from storage (each a loop over the SIMD
// lanes with a bounds check), not the arithmetic; three choices cut them:
// - Four pixels of a row per invocation, x + k * stride (k = 0..3): they reach their outputs
//   through the same taps, so a tap's sign word and gamma serve all four.
// - The signs and gamma are read from uniform copies made just before the dispatch (`signs`,
//   `gammas`) at workgroup-uniform offsets (the word is the workgroup's y, the rest loop
//   counters), which lavapipe turns into one scalar load broadcast to the lanes: 1.1x.
// - Stride 1 and 3 columns (SHARED = 1): the four pixels' three column taps read six distinct
//   gradients of a row, x - 2 + pad .. x + 3 + pad, loaded once per (kh, co) instead of twelve
//   times (1.4x at mnist's conv2 with the copies). Other shapes (SHARED = 0) load four per tap.
// Both forms add the same terms in the same order: for each input channel, kh, then co, then
// kw (the CPU mirror's order), one add each.
//
// Bindings:
//   0 uniform params : PackedConvGradParams (common/packed_grad.wgsl): the dispatch sums rows
//                      kh_start..kh_end, words word_start.. (word_count), channels
//                      co_start..co_end; resume = 1 continues the sums grad_input holds
//   1 storage read   : grad_output [N, C_out, H_out, W_out] f32  dL/d(conv output)
//   2 uniform        : signs  [kh - kh_start][kW][word - word_start][co - co_start] u32, words
//                      co_stride apart, as 4096 vec4s (64 KiB, WebGPU's default uniform
//                      binding size): the slice of pack_weights' [kH, kW, words, C_out_pad]
//                      this dispatch reads
//   3 uniform        : gammas [C_out] f32 as 4096 vec4s: gamma, the per-channel scale of W_b
//   4 storage rw     : grad_input  [N, C_in, H, W] f32  (written; read first when resume = 1)
// Dispatch: grid (x, word_count, z): one invocation per (n, iy, slot) from x and z, 32 input
// channels of four input pixels each, workgroups of 64 (x * z >= ceil(N * H *
// pixel_slots(W, stride) / 64)); slots vary fastest, so neighbouring invocations read nearby
// gradients. The host splits the sums over dispatches (words first, then kernel rows, then
// output channels) when the signs they read pass 64 KiB; a dispatch after the first of its
// words continues the stored sums (an f32 stored and reloaded continues exactly).
//
// A tap that reaches no output for a pixel adds +-0.0 there (the sums start at +0.0 and never
// become -0.0, so that changes nothing, whatever gamma is); pixels past the row's end are
// computed and never stored.

//!include common/packed_grad.wgsl

// 1: stride 1 and kernel_w 3, the six-gradient form above (`PackedConvInputGrad::shared`).
override SHARED: u32 = 0u;

@group(0) @binding(1) var<storage, read> grad_output: array<f32>;
@group(0) @binding(2) var<uniform> signs: array<vec4<u32>, 4096>;
@group(0) @binding(3) var<uniform> gammas: array<vec4<f32>, 4096>;
@group(0) @binding(4) var<storage, read_write> grad_input: array<f32>;

// The sign word of (kh, kw, co) for this dispatch's word `wq` (0-based in its range).
fn sign_word(kh: u32, kw: u32, wq: u32, co: u32) -> u32 {
    let i = (((kh - params.kh_start) * params.kernel_w + kw) * params.word_count + wq)
        * params.co_stride + (co - params.co_start);
    return signs[i / 4u][i % 4u];
}

fn gamma_of(co: u32) -> f32 {
    return gammas[co / 4u][co % 4u];
}

// v where the bit is set (sign +1), -v where it is clear, four bits at a time: the clear bit,
// moved to the sign position, flips v's sign bit. Exactly +-v, the value a select of v or -v
// gives (what SwiftShader and lavapipe agree on bit for bit), in three integer operations per
// channel instead of four.
fn signed4(v: f32, w: u32, first: u32) -> vec4<f32> {
    let flip = (vec4<u32>(~w) << vec4<u32>(31u - first, 30u - first, 29u - first, 28u - first)) & vec4<u32>(0x80000000u);
    return bitcast<vec4<f32>>(vec4<u32>(bitcast<u32>(v)) ^ flip);
}

// acc + the signed copies of qa (signs wa), then of qb (wb), then of qc (wc), channels
// first..first + 3: three kernel columns' terms of one output channel, added in kw order.
fn add3(acc: vec4<f32>, qa: f32, wa: u32, qb: f32, wb: u32, qc: f32, wc: u32, first: u32) -> vec4<f32> {
    return ((acc + signed4(qa, wa, first)) + signed4(qb, wb, first)) + signed4(qc, wc, first);
}

// The stored sum of channel first_ci + j of the pixel at `at` (resume = 1), 0 past C_in.
fn stored(at: u32, plane: u32, first_ci: u32, j: u32) -> f32 {
    if (first_ci + j >= params.in_channels) {
        return 0.0;
    }
    return grad_input[at + j * plane];
}

// The stored sums of channels first_ci + j .. + 3 of a pixel.
fn stored4(at: u32, plane: u32, first_ci: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(stored(at, plane, first_ci, j), stored(at, plane, first_ci, j + 1u),
                     stored(at, plane, first_ci, j + 2u), stored(at, plane, first_ci, j + 3u));
}

// Stores channels first_ci + j .. + 3 of the pixel at `at` (channel first_ci's index; each
// channel a plane further), those below C_in.
fn store4(at: u32, plane: u32, first_ci: u32, j: u32, v: vec4<f32>) {
    for (var k = 0u; k < 4u; k++) {
        if (first_ci + j + k < params.in_channels) {
            grad_input[at + (j + k) * plane] = v[k];
        }
    }
}

// Stores a pixel's 32 sums (where `valid`: a pixel past the row's end is not stored).
fn store_pixel(at: u32, plane: u32, first_ci: u32, valid: bool, v0: vec4<f32>, v1: vec4<f32>,
               v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>,
               v7: vec4<f32>) {
    if (!valid) {
        return;
    }
    store4(at, plane, first_ci, 0u, v0);
    store4(at, plane, first_ci, 4u, v1);
    store4(at, plane, first_ci, 8u, v2);
    store4(at, plane, first_ci, 12u, v3);
    store4(at, plane, first_ci, 16u, v4);
    store4(at, plane, first_ci, 20u, v5);
    store4(at, plane, first_ci, 24u, v6);
    store4(at, plane, first_ci, 28u, v7);
}

// Whether input column x (rx = x + pad - kw) reaches a whole, in-range output column.
fn reaches(rx: i32) -> bool {
    let s = params.stride;
    return rx >= 0 && u32(rx) % s == 0u && u32(rx) / s < params.out_width;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = (wid.x + wid.z * nwg.x) * 64u + lid;
    if (g >= params.invocations) {
        return;
    }
    let wq = wid.y;
    let word = params.word_start + wq;
    let s = params.stride;
    let slots = pixel_slots(params.width, s);
    let slot = g % slots;
    let ix = (slot / s) * 4u * s + slot % s;
    let iy = (g / slots) % params.height;
    let n = g / (slots * params.height);
    if (ix >= params.width) {
        return; // a slot past the row's end (when the width is not a multiple of 4 * stride)
    }
    let e1 = ix + 1u * s < params.width;
    let e2 = ix + 2u * s < params.width;
    let e3 = ix + 3u * s < params.width;
    let out_plane = params.out_height * params.out_width;
    let in_plane = params.height * params.width;
    let first_ci = word * 32u;
    let at = ((n * params.in_channels + first_ci) * params.height + iy) * params.width + ix;
    // Accumulators: a* for pixel ix, b* for ix + stride, c* for ix + 2 stride, d* for
    // ix + 3 stride; 32 input channels each, as 8 vec4s.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0);
    var c5 = vec4<f32>(0.0);
    var c6 = vec4<f32>(0.0);
    var c7 = vec4<f32>(0.0);
    var d0 = vec4<f32>(0.0);
    var d1 = vec4<f32>(0.0);
    var d2 = vec4<f32>(0.0);
    var d3 = vec4<f32>(0.0);
    var d4 = vec4<f32>(0.0);
    var d5 = vec4<f32>(0.0);
    var d6 = vec4<f32>(0.0);
    var d7 = vec4<f32>(0.0);
    if (params.resume == 1u) {
        // Pixels past the row's end load pixel ix's sums instead (computed on, never stored).
        let pa = at;
        let pb = select(at, at + s, e1);
        let pc = select(at, at + 2u * s, e2);
        let pd = select(at, at + 3u * s, e3);
        a0 = stored4(pa, in_plane, first_ci, 0u);
        a1 = stored4(pa, in_plane, first_ci, 4u);
        a2 = stored4(pa, in_plane, first_ci, 8u);
        a3 = stored4(pa, in_plane, first_ci, 12u);
        a4 = stored4(pa, in_plane, first_ci, 16u);
        a5 = stored4(pa, in_plane, first_ci, 20u);
        a6 = stored4(pa, in_plane, first_ci, 24u);
        a7 = stored4(pa, in_plane, first_ci, 28u);
        b0 = stored4(pb, in_plane, first_ci, 0u);
        b1 = stored4(pb, in_plane, first_ci, 4u);
        b2 = stored4(pb, in_plane, first_ci, 8u);
        b3 = stored4(pb, in_plane, first_ci, 12u);
        b4 = stored4(pb, in_plane, first_ci, 16u);
        b5 = stored4(pb, in_plane, first_ci, 20u);
        b6 = stored4(pb, in_plane, first_ci, 24u);
        b7 = stored4(pb, in_plane, first_ci, 28u);
        c0 = stored4(pc, in_plane, first_ci, 0u);
        c1 = stored4(pc, in_plane, first_ci, 4u);
        c2 = stored4(pc, in_plane, first_ci, 8u);
        c3 = stored4(pc, in_plane, first_ci, 12u);
        c4 = stored4(pc, in_plane, first_ci, 16u);
        c5 = stored4(pc, in_plane, first_ci, 20u);
        c6 = stored4(pc, in_plane, first_ci, 24u);
        c7 = stored4(pc, in_plane, first_ci, 28u);
        d0 = stored4(pd, in_plane, first_ci, 0u);
        d1 = stored4(pd, in_plane, first_ci, 4u);
        d2 = stored4(pd, in_plane, first_ci, 8u);
        d3 = stored4(pd, in_plane, first_ci, 12u);
        d4 = stored4(pd, in_plane, first_ci, 16u);
        d5 = stored4(pd, in_plane, first_ci, 20u);
        d6 = stored4(pd, in_plane, first_ci, 24u);
        d7 = stored4(pd, in_plane, first_ci, 28u);
    }
    for (var kh = params.kh_start; kh < params.kh_end; kh++) {
        // oy * stride = iy + pad - kh must be a whole, in-range output row.
        let ry = i32(iy + params.padding) - i32(kh);
        if (ry < 0 || u32(ry) % s != 0u || u32(ry) / s >= params.out_height) {
            continue;
        }
        let row = n * params.out_channels * out_plane + (u32(ry) / s) * params.out_width;
        let x0 = i32(ix + params.padding);
        if (SHARED == 1u) {
            // Pixel k at tap kw reads column x0 + k - kw: six columns x0 - 2 .. x0 + 3, q[j]
            // at x0 - 2 + j, pixel k's tap kw is q[k + 2 - kw].
            let ok0 = reaches(x0 - 2);
            let ok1 = reaches(x0 - 1);
            let ok2 = reaches(x0);
            let ok3 = reaches(x0 + 1);
            let ok4 = reaches(x0 + 2);
            let ok5 = reaches(x0 + 3);
            let at0 = row + select(0u, u32(x0 - 2), ok0);
            let at1 = row + select(0u, u32(x0 - 1), ok1);
            let at2 = row + select(0u, u32(x0), ok2);
            let at3 = row + select(0u, u32(x0 + 1), ok3);
            let at4 = row + select(0u, u32(x0 + 2), ok4);
            let at5 = row + select(0u, u32(x0 + 3), ok5);
            for (var co = params.co_start; co < params.co_end; co++) {
                let gm = gamma_of(co);
                let off = co * out_plane;
                let q0 = select(0.0, grad_output[at0 + off] * gm, ok0);
                let q1 = select(0.0, grad_output[at1 + off] * gm, ok1);
                let q2 = select(0.0, grad_output[at2 + off] * gm, ok2);
                let q3 = select(0.0, grad_output[at3 + off] * gm, ok3);
                let q4 = select(0.0, grad_output[at4 + off] * gm, ok4);
                let q5 = select(0.0, grad_output[at5 + off] * gm, ok5);
                let w0 = sign_word(kh, 0u, wq, co);
                let w1 = sign_word(kh, 1u, wq, co);
                let w2 = sign_word(kh, 2u, wq, co);
                a0 = add3(a0, q2, w0, q1, w1, q0, w2, 0u);
                a1 = add3(a1, q2, w0, q1, w1, q0, w2, 4u);
                a2 = add3(a2, q2, w0, q1, w1, q0, w2, 8u);
                a3 = add3(a3, q2, w0, q1, w1, q0, w2, 12u);
                a4 = add3(a4, q2, w0, q1, w1, q0, w2, 16u);
                a5 = add3(a5, q2, w0, q1, w1, q0, w2, 20u);
                a6 = add3(a6, q2, w0, q1, w1, q0, w2, 24u);
                a7 = add3(a7, q2, w0, q1, w1, q0, w2, 28u);
                b0 = add3(b0, q3, w0, q2, w1, q1, w2, 0u);
                b1 = add3(b1, q3, w0, q2, w1, q1, w2, 4u);
                b2 = add3(b2, q3, w0, q2, w1, q1, w2, 8u);
                b3 = add3(b3, q3, w0, q2, w1, q1, w2, 12u);
                b4 = add3(b4, q3, w0, q2, w1, q1, w2, 16u);
                b5 = add3(b5, q3, w0, q2, w1, q1, w2, 20u);
                b6 = add3(b6, q3, w0, q2, w1, q1, w2, 24u);
                b7 = add3(b7, q3, w0, q2, w1, q1, w2, 28u);
                c0 = add3(c0, q4, w0, q3, w1, q2, w2, 0u);
                c1 = add3(c1, q4, w0, q3, w1, q2, w2, 4u);
                c2 = add3(c2, q4, w0, q3, w1, q2, w2, 8u);
                c3 = add3(c3, q4, w0, q3, w1, q2, w2, 12u);
                c4 = add3(c4, q4, w0, q3, w1, q2, w2, 16u);
                c5 = add3(c5, q4, w0, q3, w1, q2, w2, 20u);
                c6 = add3(c6, q4, w0, q3, w1, q2, w2, 24u);
                c7 = add3(c7, q4, w0, q3, w1, q2, w2, 28u);
                d0 = add3(d0, q5, w0, q4, w1, q3, w2, 0u);
                d1 = add3(d1, q5, w0, q4, w1, q3, w2, 4u);
                d2 = add3(d2, q5, w0, q4, w1, q3, w2, 8u);
                d3 = add3(d3, q5, w0, q4, w1, q3, w2, 12u);
                d4 = add3(d4, q5, w0, q4, w1, q3, w2, 16u);
                d5 = add3(d5, q5, w0, q4, w1, q3, w2, 20u);
                d6 = add3(d6, q5, w0, q4, w1, q3, w2, 24u);
                d7 = add3(d7, q5, w0, q4, w1, q3, w2, 28u);
            }
        } else {
            for (var co = params.co_start; co < params.co_end; co++) {
                let gm = gamma_of(co);
                let off = co * out_plane;
                for (var kw = 0u; kw < params.kernel_w; kw++) {
                    let rx = x0 - i32(kw);
                    let v0 = reaches(rx);
                    let v1 = e1 && reaches(rx + i32(s));
                    let v2 = e2 && reaches(rx + 2 * i32(s));
                    let v3 = e3 && reaches(rx + 3 * i32(s));
                    // (Pixel k reads column (rx + k * stride) / stride where it reaches one.)
                    if (!v0 && !v1 && !v2 && !v3) {
                        continue;
                    }
                    let w = sign_word(kh, kw, wq, co);
                    let rx1 = rx + i32(s);
                    let rx2 = rx + 2 * i32(s);
                    let rx3 = rx + 3 * i32(s);
                    let g0 = select(0.0, grad_output[row + select(0u, u32(rx) / s, v0) + off] * gm, v0);
                    let g1 = select(0.0, grad_output[row + select(0u, u32(rx1) / s, v1) + off] * gm, v1);
                    let g2 = select(0.0, grad_output[row + select(0u, u32(rx2) / s, v2) + off] * gm, v2);
                    let g3 = select(0.0, grad_output[row + select(0u, u32(rx3) / s, v3) + off] * gm, v3);
                    a0 += signed4(g0, w, 0u);
                    a1 += signed4(g0, w, 4u);
                    a2 += signed4(g0, w, 8u);
                    a3 += signed4(g0, w, 12u);
                    a4 += signed4(g0, w, 16u);
                    a5 += signed4(g0, w, 20u);
                    a6 += signed4(g0, w, 24u);
                    a7 += signed4(g0, w, 28u);
                    b0 += signed4(g1, w, 0u);
                    b1 += signed4(g1, w, 4u);
                    b2 += signed4(g1, w, 8u);
                    b3 += signed4(g1, w, 12u);
                    b4 += signed4(g1, w, 16u);
                    b5 += signed4(g1, w, 20u);
                    b6 += signed4(g1, w, 24u);
                    b7 += signed4(g1, w, 28u);
                    c0 += signed4(g2, w, 0u);
                    c1 += signed4(g2, w, 4u);
                    c2 += signed4(g2, w, 8u);
                    c3 += signed4(g2, w, 12u);
                    c4 += signed4(g2, w, 16u);
                    c5 += signed4(g2, w, 20u);
                    c6 += signed4(g2, w, 24u);
                    c7 += signed4(g2, w, 28u);
                    d0 += signed4(g3, w, 0u);
                    d1 += signed4(g3, w, 4u);
                    d2 += signed4(g3, w, 8u);
                    d3 += signed4(g3, w, 12u);
                    d4 += signed4(g3, w, 16u);
                    d5 += signed4(g3, w, 20u);
                    d6 += signed4(g3, w, 24u);
                    d7 += signed4(g3, w, 28u);
                }
            }
        }
    }
    // Written without a loop over the channels: lavapipe keeps a loop's dynamically indexed
    // arrays in per-lane memory.
    store_pixel(at, in_plane, first_ci, true, a0, a1, a2, a3, a4, a5, a6, a7);
    store_pixel(at + 1u * s, in_plane, first_ci, e1, b0, b1, b2, b3, b4, b5, b6, b7);
    store_pixel(at + 2u * s, in_plane, first_ci, e2, c0, c1, c2, c3, c4, c5, c6, c7);
    store_pixel(at + 3u * s, in_plane, first_ci, e3, d0, d1, d2, d3, d4, d5, d6, d7);
}
