// gemm_register: batched C[b] (M x N) = op(A[b]) (M x K) * op(B[b]) (K x N), register-blocked
// variant for CPU rasterisers (lavapipe, SwiftShader): no shared memory, no barriers; each
// invocation keeps an 8x8 tile of C in 16 vec4 registers and walks K four steps at a time.
//
// Bindings:
//   0 uniform params : GemmParams (common/gemm.wgsl)
//   1 storage read   : a  f32, matrix b at offset_a + b * stride_a; [M, K] row-major, or [K, M]
//                          when trans_a (stride_a = 0 shares one matrix, e.g. conv weights)
//   2 storage read   : b  f32, at offset_b + b * stride_b; [K, N] row-major, or [N, K] when trans_b
//   3 storage rw     : c  f32, [M, N] row-major at offset_c + b * stride_c; with reduce_batch one
//                          C at offset_c receives the sum over the batch; accumulate adds to C
// Dispatch: workgroups of 8x8 invocations covering a 64x64 block of C:
//   (ceil(N / 64), ceil(M / 64), reduce_batch ? 1 : batch).
//
// Edge tiles: row/column indices are clamped to M-1 / N-1 for loads (always in bounds, no
// branches in the K loop) and masked on store. The code is unrolled by hand because llvmpipe
// keeps only straight-line scalars in registers; function-local arrays would live in memory.

//!include common/gemm.wgsl

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn store(idx: u32, v: f32) {
    var x = v;
    if (params.accumulate != 0u) {
        x += c[idx];
    }
    c[idx] = x;
}

fn store_row(oc: u32, row: u32, col0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    let base = oc + row * params.n + col0;
    let left = params.n - col0;
    if (left >= 8u) {
        store(base, lo.x);
        store(base + 1u, lo.y);
        store(base + 2u, lo.z);
        store(base + 3u, lo.w);
        store(base + 4u, hi.x);
        store(base + 5u, hi.y);
        store(base + 6u, hi.z);
        store(base + 7u, hi.w);
        return;
    }
    let v = array<f32, 8>(lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    for (var j = 0u; j < left; j++) {
        store(base + j, v[j]);
    }
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = (wid.y * 8u + lid.y) * 8u;
    let col0 = (wid.x * 8u + lid.x) * 8u;
    if (row0 >= params.m || col0 >= params.n) {
        return;
    }
    // Memory strides of op(A)(i, k) and op(B)(k, j).
    var sam = params.k;
    var sak = 1u;
    if (params.trans_a != 0u) {
        sam = 1u;
        sak = params.m;
    }
    var sbk = params.n;
    var sbn = 1u;
    if (params.trans_b != 0u) {
        sbk = 1u;
        sbn = params.k;
    }
    let mlast = params.m - 1u;
    let nlast = params.n - 1u;
    let ra0 = min(row0 + 0u, mlast) * sam;
    let ra1 = min(row0 + 1u, mlast) * sam;
    let ra2 = min(row0 + 2u, mlast) * sam;
    let ra3 = min(row0 + 3u, mlast) * sam;
    let ra4 = min(row0 + 4u, mlast) * sam;
    let ra5 = min(row0 + 5u, mlast) * sam;
    let ra6 = min(row0 + 6u, mlast) * sam;
    let ra7 = min(row0 + 7u, mlast) * sam;
    let cb0 = min(col0 + 0u, nlast) * sbn;
    let cb1 = min(col0 + 1u, nlast) * sbn;
    let cb2 = min(col0 + 2u, nlast) * sbn;
    let cb3 = min(col0 + 3u, nlast) * sbn;
    let cb4 = min(col0 + 4u, nlast) * sbn;
    let cb5 = min(col0 + 5u, nlast) * sbn;
    let cb6 = min(col0 + 6u, nlast) * sbn;
    let cb7 = min(col0 + 7u, nlast) * sbn;
    var b_first = wid.z;
    var b_end = wid.z + 1u;
    if (params.reduce_batch != 0u) {
        b_first = 0u;
        b_end = params.batch;
    }
    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);
    var acc4l = vec4<f32>(0.0);
    var acc4h = vec4<f32>(0.0);
    var acc5l = vec4<f32>(0.0);
    var acc5h = vec4<f32>(0.0);
    var acc6l = vec4<f32>(0.0);
    var acc6h = vec4<f32>(0.0);
    var acc7l = vec4<f32>(0.0);
    var acc7h = vec4<f32>(0.0);
    let k4 = params.k & ~3u;
    for (var bi = b_first; bi < b_end; bi++) {
        let oa = params.offset_a + bi * params.stride_a;
        let ob = params.offset_b + bi * params.stride_b;
        for (var k = 0u; k < k4; k += 4u) {
            let ka0 = oa + k * sak;
            let ka1 = ka0 + sak;
            let ka2 = ka1 + sak;
            let ka3 = ka2 + sak;
            let kb0 = ob + k * sbk;
            let kb1 = kb0 + sbk;
            let kb2 = kb1 + sbk;
            let kb3 = kb2 + sbk;
            let b0l = vec4<f32>(b[kb0 + cb0], b[kb0 + cb1], b[kb0 + cb2], b[kb0 + cb3]);
            let b0h = vec4<f32>(b[kb0 + cb4], b[kb0 + cb5], b[kb0 + cb6], b[kb0 + cb7]);
            let b1l = vec4<f32>(b[kb1 + cb0], b[kb1 + cb1], b[kb1 + cb2], b[kb1 + cb3]);
            let b1h = vec4<f32>(b[kb1 + cb4], b[kb1 + cb5], b[kb1 + cb6], b[kb1 + cb7]);
            let b2l = vec4<f32>(b[kb2 + cb0], b[kb2 + cb1], b[kb2 + cb2], b[kb2 + cb3]);
            let b2h = vec4<f32>(b[kb2 + cb4], b[kb2 + cb5], b[kb2 + cb6], b[kb2 + cb7]);
            let b3l = vec4<f32>(b[kb3 + cb0], b[kb3 + cb1], b[kb3 + cb2], b[kb3 + cb3]);
            let b3h = vec4<f32>(b[kb3 + cb4], b[kb3 + cb5], b[kb3 + cb6], b[kb3 + cb7]);
            let a0 = vec4<f32>(a[ra0 + ka0], a[ra0 + ka1], a[ra0 + ka2], a[ra0 + ka3]);
            acc0l += a0.x * b0l + a0.y * b1l + a0.z * b2l + a0.w * b3l;
            acc0h += a0.x * b0h + a0.y * b1h + a0.z * b2h + a0.w * b3h;
            let a1 = vec4<f32>(a[ra1 + ka0], a[ra1 + ka1], a[ra1 + ka2], a[ra1 + ka3]);
            acc1l += a1.x * b0l + a1.y * b1l + a1.z * b2l + a1.w * b3l;
            acc1h += a1.x * b0h + a1.y * b1h + a1.z * b2h + a1.w * b3h;
            let a2 = vec4<f32>(a[ra2 + ka0], a[ra2 + ka1], a[ra2 + ka2], a[ra2 + ka3]);
            acc2l += a2.x * b0l + a2.y * b1l + a2.z * b2l + a2.w * b3l;
            acc2h += a2.x * b0h + a2.y * b1h + a2.z * b2h + a2.w * b3h;
            let a3 = vec4<f32>(a[ra3 + ka0], a[ra3 + ka1], a[ra3 + ka2], a[ra3 + ka3]);
            acc3l += a3.x * b0l + a3.y * b1l + a3.z * b2l + a3.w * b3l;
            acc3h += a3.x * b0h + a3.y * b1h + a3.z * b2h + a3.w * b3h;
            let a4 = vec4<f32>(a[ra4 + ka0], a[ra4 + ka1], a[ra4 + ka2], a[ra4 + ka3]);
            acc4l += a4.x * b0l + a4.y * b1l + a4.z * b2l + a4.w * b3l;
            acc4h += a4.x * b0h + a4.y * b1h + a4.z * b2h + a4.w * b3h;
            let a5 = vec4<f32>(a[ra5 + ka0], a[ra5 + ka1], a[ra5 + ka2], a[ra5 + ka3]);
            acc5l += a5.x * b0l + a5.y * b1l + a5.z * b2l + a5.w * b3l;
            acc5h += a5.x * b0h + a5.y * b1h + a5.z * b2h + a5.w * b3h;
            let a6 = vec4<f32>(a[ra6 + ka0], a[ra6 + ka1], a[ra6 + ka2], a[ra6 + ka3]);
            acc6l += a6.x * b0l + a6.y * b1l + a6.z * b2l + a6.w * b3l;
            acc6h += a6.x * b0h + a6.y * b1h + a6.z * b2h + a6.w * b3h;
            let a7 = vec4<f32>(a[ra7 + ka0], a[ra7 + ka1], a[ra7 + ka2], a[ra7 + ka3]);
            acc7l += a7.x * b0l + a7.y * b1l + a7.z * b2l + a7.w * b3l;
            acc7h += a7.x * b0h + a7.y * b1h + a7.z * b2h + a7.w * b3h;
        }
        for (var k = k4; k < params.k; k++) {
            let ka = oa + k * sak;
            let kb = ob + k * sbk;
            let bl = vec4<f32>(b[kb + cb0], b[kb + cb1], b[kb + cb2], b[kb + cb3]);
            let bh = vec4<f32>(b[kb + cb4], b[kb + cb5], b[kb + cb6], b[kb + cb7]);
            let a0 = a[ra0 + ka];
            acc0l += a0 * bl;
            acc0h += a0 * bh;
            let a1 = a[ra1 + ka];
            acc1l += a1 * bl;
            acc1h += a1 * bh;
            let a2 = a[ra2 + ka];
            acc2l += a2 * bl;
            acc2h += a2 * bh;
            let a3 = a[ra3 + ka];
            acc3l += a3 * bl;
            acc3h += a3 * bh;
            let a4 = a[ra4 + ka];
            acc4l += a4 * bl;
            acc4h += a4 * bh;
            let a5 = a[ra5 + ka];
            acc5l += a5 * bl;
            acc5h += a5 * bh;
            let a6 = a[ra6 + ka];
            acc6l += a6 * bl;
            acc6h += a6 * bh;
            let a7 = a[ra7 + ka];
            acc7l += a7 * bl;
            acc7h += a7 * bh;
        }
    }
    let oc = params.offset_c + select(wid.z, 0u, params.reduce_batch != 0u) * params.stride_c;
    store_row(oc, row0 + 0u, col0, acc0l, acc0h);
    store_row(oc, row0 + 1u, col0, acc1l, acc1h);
    store_row(oc, row0 + 2u, col0, acc2l, acc2h);
    store_row(oc, row0 + 3u, col0, acc3l, acc3h);
    store_row(oc, row0 + 4u, col0, acc4l, acc4h);
    store_row(oc, row0 + 5u, col0, acc5l, acc5h);
    store_row(oc, row0 + 6u, col0, acc6l, acc6h);
    store_row(oc, row0 + 7u, col0, acc7l, acc7h);
}
