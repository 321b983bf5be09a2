#![allow(clippy::unwrap_used)]
//! `GpuContext::batch`: submissions inside it become one queue submission, in order; readbacks
//! started inside map on their first `try_take`; the in-flight count returns to zero.

mod common;

use bitspike::gpu::GpuBuffer;

#[test]
fn batched_copies_and_readbacks_arrive_in_order() {
    let Some(ctx) = common::gpu() else { return };
    for len in [1usize, 63, 65, 10_000] {
        let a: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
        let src = GpuBuffer::from_slice(&ctx, &a, "src").unwrap();
        let dst = GpuBuffer::<f32>::zeros(&ctx, len, "dst").unwrap();
        let (mut before, mut after) = ctx.batch(|| {
            assert!(ctx.batching());
            // Read dst, copy src -> dst, read dst again: the two readbacks must see the
            // states before and after the copy, so the batch keeps submission order.
            let before = dst.read_back(&ctx);
            let mut enc = ctx.encoder("copy");
            src.copy_to(&mut enc, &dst, 0).unwrap();
            ctx.submit(enc);
            (before, dst.read_back(&ctx))
        });
        assert!(!ctx.batching());
        let mut got = (None, None);
        for _ in 0..10_000 {
            let _ = ctx.device.poll(wgpu::PollType::Poll);
            if got.0.is_none() {
                got.0 = before.try_take();
            }
            if got.1.is_none() {
                got.1 = after.try_take();
            }
            if got.0.is_some() && got.1.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (b, a2) = (got.0.unwrap().unwrap(), got.1.unwrap().unwrap());
        common::assert_exact("before the copy", &b, &vec![0.0; len]);
        common::assert_exact("after the copy", &a2, &a);
        println!("len {len}: one submission, readbacks before and after the copy correct");
        ctx.wait_idle().unwrap();
        assert_eq!(
            ctx.in_flight(),
            0,
            "in-flight count after the device is idle"
        );
    }
}
