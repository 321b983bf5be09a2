// gemm_tiled: batched C[b] (M x N) = op(A[b]) (M x K) * op(B[b]) (K x N), shared-memory variant
// for real GPUs: a 64x64 block of C per workgroup of 16x16 invocations, each computing a 4x4
// sub-tile; A and B stream through workgroup memory in 64x16 slabs (2 x 4 KiB).
//
// Bindings (identical to gemm_register.wgsl, so both variants share one Rust struct):
//   0 uniform params : GemmParams (common/gemm.wgsl)
//   1 storage read   : a  f32, matrix b at offset_a + b * stride_a; [M, K] row-major, or [K, M]
//                          when trans_a (stride_a = 0 shares one matrix, e.g. conv weights)
//   2 storage read   : b  f32, at offset_b + b * stride_b; [K, N] row-major, or [N, K] when trans_b
//   3 storage rw     : c  f32, [M, N] row-major at offset_c + b * stride_c; with reduce_batch one
//                          C at offset_c receives the sum over the batch; accumulate adds to C
// Dispatch: (ceil(N / 64), ceil(M / 64), reduce_batch ? 1 : batch) workgroups of 16x16.
//
// Slab loads are bounds-checked (zero outside), and the load mapping follows the storage order
// so that neighbouring invocations read neighbouring addresses (coalesced) for every transpose.

//!include common/gemm.wgsl

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const SLAB: u32 = 16u;

// [SLAB][TILE / 4] vec4s: slab_a[kk * 16 + r] holds op(A) rows 4r..4r+3 at k = kk.
var<workgroup> slab_a: array<vec4<f32>, 256>;
// slab_b[kk * 16 + q] holds op(B) columns 4q..4q+3 at k = kk.
var<workgroup> slab_b: array<vec4<f32>, 256>;

fn store(idx: u32, v: f32) {
    var x = v;
    if (params.accumulate != 0u) {
        x += c[idx];
    }
    c[idx] = x;
}

fn store_row(oc: u32, row: u32, col0: u32, v: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    let base = oc + row * params.n + col0;
    for (var j = 0u; j < 4u; j++) {
        if (col0 + j < params.n) {
            store(base + j, v[j]);
        }
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row_base = wid.y * TILE;
    let col_base = wid.x * TILE;
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
    var b_first = wid.z;
    var b_end = wid.z + 1u;
    if (params.reduce_batch != 0u) {
        b_first = 0u;
        b_end = params.batch;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var bi = b_first; bi < b_end; bi++) {
        let oa = params.offset_a + bi * params.stride_a;
        let ob = params.offset_b + bi * params.stride_b;
        for (var k0 = 0u; k0 < params.k; k0 += SLAB) {
            for (var q = 0u; q < 4u; q++) {
                let e = li + q * 256u;
                // A slab element (kk, mm); k fastest when A is [M, K], m fastest when [K, M].
                var kk = e % SLAB;
                var mm = e / SLAB;
                if (params.trans_a != 0u) {
                    kk = e / TILE;
                    mm = e % TILE;
                }
                let gm = row_base + mm;
                let gk = k0 + kk;
                var va = 0.0;
                if (gm < params.m && gk < params.k) {
                    va = a[oa + gm * sam + gk * sak];
                }
                slab_a[kk * 16u + mm / 4u][mm % 4u] = va;
                // B slab element (kk, nn); n fastest when B is [K, N], k fastest when [N, K].
                var kb = e / TILE;
                var nn = e % TILE;
                if (params.trans_b != 0u) {
                    kb = e % SLAB;
                    nn = e / SLAB;
                }
                let gn = col_base + nn;
                let gkb = k0 + kb;
                var vb = 0.0;
                if (gn < params.n && gkb < params.k) {
                    vb = b[ob + gkb * sbk + gn * sbn];
                }
                slab_b[kb * 16u + nn / 4u][nn % 4u] = vb;
            }
            workgroupBarrier();
            for (var kk = 0u; kk < SLAB; kk++) {
                let av = slab_a[kk * 16u + lid.y];
                let bv = slab_b[kk * 16u + lid.x];
                acc0 += av.x * bv;
                acc1 += av.y * bv;
                acc2 += av.z * bv;
                acc3 += av.w * bv;
            }
            workgroupBarrier();
        }
    }
    let oc = params.offset_c + select(wid.z, 0u, params.reduce_batch != 0u) * params.stride_c;
    let row0 = row_base + lid.y * 4u;
    let col0 = col_base + lid.x * 4u;
    store_row(oc, row0, col0, acc0);
    store_row(oc, row0 + 1u, col0, acc1);
    store_row(oc, row0 + 2u, col0, acc2);
    store_row(oc, row0 + 3u, col0, acc3);
}
