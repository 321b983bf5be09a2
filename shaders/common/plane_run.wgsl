// plane_run: the run of values one invocation takes in the kernels that read per-channel values
// beside every element (batchnorm_apply, batchnorm_backward_input, the fused tails bn_agmm_lif_*):
// up to `run` consecutive values of one (sample, channel) plane of `spatial` values, so the
// channel's values are loaded once per run. Invocation `g` takes run g % R of plane g / R,
// R = ceil(spatial / run); `len` is 0 past the last of `planes` planes. The host picks `run`
// per adapter (KernelVariant::plane_run): 16 on CPU rasterisers, where every per-invocation
// load is a gather, 1 on GPUs (one value per invocation, neighbours adjacent); 0 counts as 1.

struct PlaneRun {
    start: u32,  // flat index of the run's first value
    len: u32,    // values in the run (0: nothing to do)
    c: u32,      // the plane's channel
}

fn plane_run_of(g: u32, spatial: u32, planes: u32, channels: u32, run_param: u32) -> PlaneRun {
    let run = max(run_param, 1u);
    let runs = (spatial + run - 1u) / run;
    let plane = g / runs;
    if (plane >= planes) {
        return PlaneRun(0u, 0u, 0u);
    }
    let first = (g - plane * runs) * run;
    return PlaneRun(plane * spatial + first, min(run, spatial - first), plane % channels);
}
