//! The bind-group cache behind every dispatch (`gpu/bind_cache.rs`): a repeated dispatch
//! reuses its bind group, different params or buffers get their own (and compute with their
//! own: entries are immutable, so two dispatches in one command buffer never share a
//! uniform), and dropping a buffer empties the cache so it never keeps freed memory alive.
//! One test function: the counters are per context, the drop counter per process.

#![allow(clippy::unwrap_used)]

mod common;

use bitspike::kernels::elementwise::{ElementwiseParams, ResidualAdd};
use common::*;

#[test]
fn repeated_dispatches_reuse_bind_groups_and_drops_empty_the_cache() {
    let Some(ctx) = gpu() else { return };
    let add = ResidualAdd::new(&ctx).unwrap();
    let a = upload(&ctx, &[1.0f32, 2.0, 3.0, 4.0]);
    let b = upload(&ctx, &[10.0f32, 20.0, 30.0, 40.0]);
    let out = zeros::<f32>(&ctx, 4);
    let (hits0, misses0, _) = ctx.bind_group_stats();

    // The same dispatch twice: one creation, then one hit.
    let all = ElementwiseParams::new(4);
    for _ in 0..2 {
        record(&ctx, |enc| add.dispatch(&ctx, enc, &all, &a, &b, &out));
    }
    let (hits1, misses1, _) = ctx.bind_group_stats();
    assert_eq!((hits1 - hits0, misses1 - misses0), (1, 1));
    assert_eq!(read(&ctx, &out), vec![11.0, 22.0, 33.0, 44.0]);

    // Other params, same buffers, in one command buffer with the first: its own entry, and
    // each dispatch sees its own params (the second adds only the first two elements).
    // (Aliases: the kernels check lengths exactly; an alias binds the same buffer.)
    let two = ElementwiseParams::new(2);
    let fresh = zeros::<f32>(&ctx, 4);
    let (a2, b2, fresh2) = (
        a.alias(2).unwrap(),
        b.alias(2).unwrap(),
        fresh.alias(2).unwrap(),
    );
    record(&ctx, |enc| {
        add.dispatch(&ctx, enc, &all, &a, &b, &out)?;
        add.dispatch(&ctx, enc, &two, &a2, &b2, &fresh2)
    });
    let (hits2, misses2, _) = ctx.bind_group_stats();
    assert_eq!((hits2 - hits1, misses2 - misses1), (1, 1));
    assert_eq!(read(&ctx, &fresh), vec![11.0, 22.0, 0.0, 0.0]);

    // Dropping an alias frees nothing and keeps the cache; dropping a buffer empties it: the
    // next dispatch creates its bind group again.
    let (_, _, held) = ctx.bind_group_stats();
    assert!(held >= 2, "{held} entries");
    drop((a2, b2, fresh2));
    record(&ctx, |enc| add.dispatch(&ctx, enc, &all, &a, &b, &out));
    let (hits3, misses3, _) = ctx.bind_group_stats();
    assert_eq!((hits3 - hits2, misses3 - misses2), (1, 0));
    drop(fresh);
    record(&ctx, |enc| add.dispatch(&ctx, enc, &all, &a, &b, &out));
    let (hits4, misses4, held) = ctx.bind_group_stats();
    assert_eq!((hits4 - hits3, misses4 - misses3), (0, 1));
    assert_eq!(held, 1, "entries after a drop");

    // A dropped buffer's bind groups go before the next allocation too, not only at the next
    // dispatch: a replaced workspace's memory is free before its successor is allocated.
    let tmp = zeros::<f32>(&ctx, 4);
    record(&ctx, |enc| add.dispatch(&ctx, enc, &all, &a, &b, &tmp));
    assert_eq!(ctx.bind_group_stats().2, 2);
    drop(tmp);
    let _next = zeros::<f32>(&ctx, 4);
    assert_eq!(
        ctx.bind_group_stats().2,
        0,
        "entries after a drop and an allocation"
    );
}
