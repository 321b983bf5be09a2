//! Tensors larger than one storage binding (`gpu::split`, `snn::layers::gather`): a small
//! model run on a context that binds at most a few hundred KiB goes through the same windows
//! and gathered passes that `resnet19` at batch 128 takes under WebGPU's 128 MiB, and must give
//! what one binding per tensor gives.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::gpu::GpuContext;
use bitspike::model::{Encoding, ModelConfig};
use bitspike::snn::{Network, Pass, Workspace};
use common::*;

const T: usize = 4;
const B: usize = 24;
/// Bytes per binding in the split runs: every conv unit's `[T*B, C, H, W]` (about 2.4 MB), the
/// pooled tensors and the readout's input (`[96, 784]`, 301 KB) are split, the weights not.
const SMALL_BINDING: u64 = 256 << 10;

fn model(encoding: Encoding) -> ModelConfig {
    ModelConfig {
        timesteps: T,
        encoding,
        ..residual_model()
    }
}

/// Every layer's output and the logits after an eval forward of `input`.
fn eval_outputs(
    ctx: &GpuContext,
    net: &Network,
    input: &[f32],
    labels: &[u32],
    pass: Pass,
) -> Vec<Vec<f32>> {
    let ws = net.inference_workspace(ctx, B).unwrap();
    net.upload(ctx, &ws, input, labels).unwrap();
    let mut enc = ctx.encoder("eval");
    net.record_forward(ctx, &mut enc, &ws, pass).unwrap();
    ctx.submit(enc);
    let mut out = outputs(ctx, net, &ws);
    if pass == Pass::Inspect {
        // And what a probe reads: each spiking layer's membrane and AGMM expectation.
        for mut layer in net.read_spiking_layers(ctx, &ws).unwrap() {
            let mut polls = 0;
            while !layer.poll().unwrap() {
                ctx.wait_idle().unwrap();
                polls += 1;
                assert!(polls < 100, "readback never arrived");
            }
            for part in [&mut layer.membrane, &mut layer.expectation]
                .into_iter()
                .flatten()
            {
                out.push(part.take());
            }
        }
    }
    out
}

fn outputs(ctx: &GpuContext, net: &Network, ws: &Workspace) -> Vec<Vec<f32>> {
    (0..net.layers().len())
        .map(|i| read(ctx, net.layer_output(ws, i).unwrap()))
        .collect()
}

fn inputs(repeated: bool) -> (Vec<f32>, Vec<u32>) {
    let mut r = rng(41);
    let per = 28 * 28;
    let input = match repeated {
        // Direct encoding: one frame at every timestep (the single-frame encoder).
        true => {
            let frame = uniform(&mut r, B * per, -0.5, 2.5);
            (0..T).flat_map(|_| frame.clone()).collect()
        }
        false => spikes(&mut r, T * B * per, 0.3),
    };
    let labels = (0..B as u32).map(|i| i % 10).collect();
    (input, labels)
}

/// Eval (fused, and the inspection chain with its membranes and AGMM expectations) through
/// split bindings equals eval in one binding per tensor, bit for bit (no sum changes order:
/// the windows and gathered copies only move where each neuron's values sit).
#[test]
fn eval_split_across_bindings_matches_one_binding() {
    let Some(ctx) = gpu() else { return };
    for (encoding, repeated) in [(Encoding::Direct, true), (Encoding::Poisson, false)] {
        let net = Network::new(&ctx, &model(encoding), 3).unwrap();
        let (input, labels) = inputs(repeated);
        for pass in [Pass::Eval, Pass::Inspect] {
            ctx.limit_bindings(u64::MAX);
            let whole = eval_outputs(&ctx, &net, &input, &labels, pass);
            ctx.limit_bindings(SMALL_BINDING);
            let split = eval_outputs(&ctx, &net, &input, &labels, pass);
            ctx.limit_bindings(u64::MAX);
            assert_eq!(whole.len(), split.len());
            for (i, (w, s)) in whole.iter().zip(&split).enumerate() {
                assert_exact(&format!("{encoding:?} {pass:?} tensor {i}"), s, w);
            }
            let fired = whole[1].iter().filter(|&&v| v != 0.0).count();
            assert!(fired > 0 && fired < whole[1].len(), "unit 1 fired {fired}");
        }
    }
}

/// A tensor that even one aligned sample of cannot fit a binding: a typed error naming the
/// limit, not a validation failure or a panic.
#[test]
fn a_sample_over_the_binding_limit_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    let net = Network::new(&ctx, &model(Encoding::Poisson), 3).unwrap();
    let (input, labels) = inputs(false);
    ctx.limit_bindings(4 << 10);
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let ws = net.inference_workspace(&ctx, B)?;
        net.upload(&ctx, &ws, &input, &labels)?;
        let mut enc = ctx.encoder("eval");
        net.record_forward(&ctx, &mut enc, &ws, Pass::Eval)?;
        ctx.submit(enc);
        Ok(())
    })();
    ctx.limit_bindings(u64::MAX);
    let err = result.expect_err("a 25 KB sample in 4 KiB bindings");
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("max_storage_buffer_binding_size"), "{text}");
}

/// A parameter's name and its gradient.
type NamedGrad = (String, Vec<f32>);

/// One training step's forward and backward: every layer's output (spikes exactly as the
/// single-binding run where its batch statistics agree) and every parameter's gradient.
fn train_step(
    ctx: &GpuContext,
    net: &Network,
    input: &[f32],
    labels: &[u32],
) -> (Vec<Vec<f32>>, Vec<NamedGrad>) {
    let ws = net.workspace(ctx, B).unwrap();
    net.upload(ctx, &ws, input, labels).unwrap();
    let mut enc = ctx.encoder("step");
    net.record_forward(ctx, &mut enc, &ws, Pass::Train).unwrap();
    net.record_backward(ctx, &mut enc, &ws).unwrap();
    ctx.submit(enc);
    let grads = net
        .params()
        .iter()
        .map(|p| (p.name.clone(), read(ctx, &p.grad)))
        .collect();
    (outputs(ctx, net, &ws), grads)
}

/// A training step through split bindings: the batch-norm statistics and gradient sums add
/// up per range of samples (another order of the same float sums), everything else is moved
/// around bit for bit; spikes match but for values within rounding of the threshold, and the
/// gradients to float tolerance.
#[test]
fn training_split_across_bindings_matches_one_binding() {
    let Some(ctx) = gpu() else { return };
    for (encoding, repeated) in [(Encoding::Direct, true), (Encoding::Poisson, false)] {
        let (input, labels) = inputs(repeated);
        // Two networks from one seed: each step moves the running statistics.
        let whole_net = Network::new(&ctx, &model(encoding), 3).unwrap();
        let split_net = Network::new(&ctx, &model(encoding), 3).unwrap();
        ctx.limit_bindings(u64::MAX);
        let (whole_out, whole_grads) = train_step(&ctx, &whole_net, &input, &labels);
        ctx.limit_bindings(SMALL_BINDING);
        let (split_out, split_grads) = train_step(&ctx, &split_net, &input, &labels);
        ctx.limit_bindings(u64::MAX);
        for (i, (w, s)) in whole_out.iter().zip(&split_out).enumerate() {
            let differ = w.iter().zip(s).filter(|(a, b)| a != b).count();
            println!(
                "{encoding:?} layer {i}: {differ} of {} outputs differ",
                w.len()
            );
            assert!(
                differ * 1000 <= w.len(),
                "{encoding:?} layer {i}: {differ} differ"
            );
        }
        for ((name, w), (_, s)) in whole_grads.iter().zip(&split_grads) {
            assert_close(&format!("{encoding:?} {name} grad"), s, w, 1e-4, 1e-6);
        }
    }
}
