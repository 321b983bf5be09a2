// binary_conv_popcount_vec4: binary_conv_popcount (the same counts, params, bindings and
// dispatch, with PIXELS = 4) storing each channel's four pixels as one vec4, for output planes
// of a multiple of 4 pixels: then an invocation's four consecutive pixels lie in one plane, on
// a vec4 (`BinaryConvPopcount::dispatch` picks it on CPU rasterisers, where a storage access is
// a loop over the SIMD lanes whatever its width: 16 stores per invocation instead of 64). Each
// value is binary_conv_popcount's, gamma[co] * (2 * popcount(s & w) - popcount(s)) (times
// 1 / AREA for averaged spikes).
//
// Binding 4 (output [N, C_out, OH, OW] f32) typed vec4<f32>; the others as
// binary_conv_popcount's.

//!include common/popcount_params.wgsl

@group(0) @binding(1) var<storage, read> spikes: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

//!include common/popcount_block.wgsl

// Channel c's value at the four pixels from their counts of popcount(s & w) (`acc`) and
// popcount(s) (`ones`), stored at `at` (its first pixel's flat index, a multiple of 4).
fn store_channel(c: u32, at: u32, acc: vec4<u32>, ones: vec4<u32>) {
    if (c >= params.out_channels) {
        return;
    }
    let counts = vec4<f32>(vec4<i32>(acc) * 2 - vec4<i32>(ones));
    if (AREA == 1u) {
        output[at / 4u] = gamma[c] * counts;
    } else {
        output[at / 4u] = gamma[c] * (counts * INV_AREA);
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let p = 4u * ((wid.x + wid.z * nwg.x) * 64u + lid);
    if (p >= params.pixels) {
        return;
    }
    // Planes of a multiple of 4 pixels: p..p + 3 are one plane's, all in range.
    let px0 = pixel(p);
    let co = wid.y * 16u;
    let r = popcount_block(px0, pixel(p + 1u), pixel(p + 2u), pixel(p + 3u), co);
    let plane = params.out_h * params.out_w;
    let at = px0.out_base + co * plane;
    // Channel co + 4k + i's counts are component i of a_k, b_k, c_k, d_k (one per pixel).
    store_channel(co, at, vec4<u32>(r.a0.x, r.b0.x, r.c0.x, r.d0.x), r.ones);
    store_channel(co + 1u, at + plane, vec4<u32>(r.a0.y, r.b0.y, r.c0.y, r.d0.y), r.ones);
    store_channel(co + 2u, at + 2u * plane, vec4<u32>(r.a0.z, r.b0.z, r.c0.z, r.d0.z), r.ones);
    store_channel(co + 3u, at + 3u * plane, vec4<u32>(r.a0.w, r.b0.w, r.c0.w, r.d0.w), r.ones);
    store_channel(co + 4u, at + 4u * plane, vec4<u32>(r.a1.x, r.b1.x, r.c1.x, r.d1.x), r.ones);
    store_channel(co + 5u, at + 5u * plane, vec4<u32>(r.a1.y, r.b1.y, r.c1.y, r.d1.y), r.ones);
    store_channel(co + 6u, at + 6u * plane, vec4<u32>(r.a1.z, r.b1.z, r.c1.z, r.d1.z), r.ones);
    store_channel(co + 7u, at + 7u * plane, vec4<u32>(r.a1.w, r.b1.w, r.c1.w, r.d1.w), r.ones);
    store_channel(co + 8u, at + 8u * plane, vec4<u32>(r.a2.x, r.b2.x, r.c2.x, r.d2.x), r.ones);
    store_channel(co + 9u, at + 9u * plane, vec4<u32>(r.a2.y, r.b2.y, r.c2.y, r.d2.y), r.ones);
    store_channel(co + 10u, at + 10u * plane, vec4<u32>(r.a2.z, r.b2.z, r.c2.z, r.d2.z), r.ones);
    store_channel(co + 11u, at + 11u * plane, vec4<u32>(r.a2.w, r.b2.w, r.c2.w, r.d2.w), r.ones);
    store_channel(co + 12u, at + 12u * plane, vec4<u32>(r.a3.x, r.b3.x, r.c3.x, r.d3.x), r.ones);
    store_channel(co + 13u, at + 13u * plane, vec4<u32>(r.a3.y, r.b3.y, r.c3.y, r.d3.y), r.ones);
    store_channel(co + 14u, at + 14u * plane, vec4<u32>(r.a3.z, r.b3.z, r.c3.z, r.d3.z), r.ones);
    store_channel(co + 15u, at + 15u * plane, vec4<u32>(r.a3.w, r.b3.w, r.c3.w, r.d3.w), r.ones);
}
