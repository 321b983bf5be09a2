//! Writes a synthetic N-MNIST-shaped data set (see `bitspike::data::events::synthetic`) made
//! from the embedded MNIST-10k digits: `cargo run --release --example synthetic_nmnist -- DIR
//! [TRAIN] [TEST]` writes `DIR/Train/<digit>/*.bin` and `DIR/Test/<digit>/*.bin`, the first
//! TRAIN (default 8000) training and TEST (default 2000) test digits.

use bitspike::data::events::synthetic::write_synthetic_nmnist;
use bitspike::data::{embedded_mnist10k, EmbeddedSplit};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: synthetic_nmnist DIR [TRAIN] [TEST]")?;
    let train_n = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8000);
    let test_n = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let train = embedded_mnist10k(EmbeddedSplit::Train)?.truncated(train_n);
    let test = embedded_mnist10k(EmbeddedSplit::Test)?.truncated(test_n);
    let n = write_synthetic_nmnist(std::path::Path::new(&dir), &train, &test, 7)?;
    println!("wrote {n} synthetic N-MNIST files under {dir}");
    Ok(())
}
