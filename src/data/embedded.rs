//! The MNIST-10k default data set embedded in the binary (see `assets/mnist10k/README.md`
//! for source and attribution): 8,000 training and 2,000 test digits.

use super::{load_idx_pair, DataError, Dataset};

const TRAIN_IMAGES: &[u8] =
    include_bytes!("../../assets/mnist10k/mnist10k-train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] =
    include_bytes!("../../assets/mnist10k/mnist10k-train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] =
    include_bytes!("../../assets/mnist10k/mnist10k-test-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] =
    include_bytes!("../../assets/mnist10k/mnist10k-test-labels-idx1-ubyte.gz");

/// Which part of the embedded set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddedSplit {
    Train,
    Test,
}

/// Decodes the embedded MNIST-10k split.
pub fn embedded_mnist10k(split: EmbeddedSplit) -> Result<Dataset, DataError> {
    match split {
        EmbeddedSplit::Train => load_idx_pair(
            "embedded mnist10k-train-images-idx3-ubyte.gz",
            TRAIN_IMAGES,
            "embedded mnist10k-train-labels-idx1-ubyte.gz",
            TRAIN_LABELS,
            10,
        ),
        EmbeddedSplit::Test => load_idx_pair(
            "embedded mnist10k-test-images-idx3-ubyte.gz",
            TEST_IMAGES,
            "embedded mnist10k-test-labels-idx1-ubyte.gz",
            TEST_LABELS,
            10,
        ),
    }
}
