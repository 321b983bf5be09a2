//! Builds a (train, test) pair from a set of named files, whatever they came from: a directory
//! (CLI), a native file dialog, or the browser's file picker (bytes only, no paths). Files are
//! recognised by name, the way the original archives name them.

use super::{load_cifar, load_idx_pair, CifarKind, DataError, Dataset};

/// The file formats a data set can come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSetKind {
    /// Four IDX files (raw or gzip): `train-images`, `train-labels`, `t10k-`/`test-images`,
    /// `t10k-`/`test-labels`.
    Idx,
    /// CIFAR-10 binary batches: `data_batch_1..5.bin`, `test_batch.bin`.
    Cifar10,
    /// CIFAR-100 binary: `train.bin`, `test.bin`.
    Cifar100,
}

/// A named file's bytes.
pub type NamedBytes = (String, Vec<u8>);

fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .to_lowercase()
}

fn find<'a>(files: &'a [NamedBytes], parts: &[&str]) -> Option<&'a NamedBytes> {
    files.iter().find(|(name, _)| {
        let n = base_name(name);
        parts.iter().all(|p| n.contains(p))
    })
}

fn missing(kind: FileSetKind, what: &str, files: &[NamedBytes]) -> DataError {
    let names: Vec<String> = files.iter().map(|(n, _)| base_name(n)).collect();
    DataError::Missing(format!(
        "{kind:?}: no {what} among the chosen files [{}]",
        names.join(", ")
    ))
}

/// File names a loader for `kind` needs, for messages and file-dialog hints.
pub fn expected_files(kind: FileSetKind) -> &'static str {
    match kind {
        FileSetKind::Idx => {
            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz allowed)"
        }
        FileSetKind::Cifar10 => "data_batch_1.bin .. data_batch_5.bin and test_batch.bin",
        FileSetKind::Cifar100 => "train.bin and test.bin",
    }
}

/// Decodes `(train, test)` from `files`, picking each part by its file name.
pub fn datasets_from_files(
    kind: FileSetKind,
    files: &[NamedBytes],
) -> Result<(Dataset, Dataset), DataError> {
    match kind {
        FileSetKind::Idx => {
            let find_pair = |split: &[&str], what: &str| {
                let mut images = None;
                let mut labels = None;
                for s in split {
                    images = images.or_else(|| find(files, &[s, "images"]));
                    labels = labels.or_else(|| find(files, &[s, "labels"]));
                }
                let images =
                    images.ok_or_else(|| missing(kind, &format!("{what} images file"), files))?;
                let labels =
                    labels.ok_or_else(|| missing(kind, &format!("{what} labels file"), files))?;
                Ok::<_, DataError>((images, labels))
            };
            let train = find_pair(&["train"], "train")?;
            let test = find_pair(&["t10k", "test"], "test")?;
            // Classes from the largest label of both splits (at least 10; EMNIST-style sets
            // have more), so both splits agree and the test labels fit the readout.
            let mut classes = 10;
            for (name, bytes) in [train.1, test.1] {
                let plain = super::maybe_gunzip(name, bytes)?;
                classes = classes.max(1 + *plain.iter().skip(8).max().unwrap_or(&0) as usize);
            }
            let load = |((ni, bi), (nl, bl)): (&NamedBytes, &NamedBytes)| {
                load_idx_pair(ni, bi, nl, bl, classes)
            };
            Ok((load(train)?, load(test)?))
        }
        FileSetKind::Cifar10 | FileSetKind::Cifar100 => {
            let (cifar, train_parts, test_part): (CifarKind, &[&str], &str) = match kind {
                FileSetKind::Cifar10 => (
                    CifarKind::Cifar10,
                    &[
                        "data_batch_1",
                        "data_batch_2",
                        "data_batch_3",
                        "data_batch_4",
                        "data_batch_5",
                    ],
                    "test_batch",
                ),
                _ => (CifarKind::Cifar100, &["train.bin"], "test.bin"),
            };
            let train: Vec<NamedBytes> = train_parts
                .iter()
                .filter_map(|p| find(files, &[p]).cloned())
                .collect();
            if train.is_empty() {
                return Err(missing(kind, "training batch", files));
            }
            let test = find(files, &[test_part])
                .cloned()
                .ok_or_else(|| missing(kind, "test batch", files))?;
            Ok((load_cifar(cifar, &train)?, load_cifar(cifar, &[test])?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_images(count: u32) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for d in [count, 2, 2] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(7u8, count as usize * 4));
        b
    }

    fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 1];
        b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        b.extend_from_slice(labels);
        b
    }

    #[test]
    fn idx_files_are_recognised_by_name_in_any_order() {
        let files = vec![
            ("dir/t10k-labels-idx1-ubyte".to_string(), idx_labels(&[1])),
            ("train-images-idx3-ubyte".to_string(), idx_images(3)),
            ("t10k-images-idx3-ubyte".to_string(), idx_images(1)),
            (
                "TRAIN-labels-idx1-ubyte".to_string(),
                idx_labels(&[0, 1, 2]),
            ),
        ];
        let (train, test) = datasets_from_files(FileSetKind::Idx, &files).unwrap();
        assert_eq!((train.len(), test.len()), (3, 1));
        assert_eq!(train.labels, vec![0, 1, 2]);
        assert_eq!((train.classes, test.classes), (10, 10));
    }

    #[test]
    fn both_splits_get_the_class_count_of_the_larger_labels() {
        let files = vec![
            ("train-images-idx3-ubyte".to_string(), idx_images(2)),
            ("train-labels-idx1-ubyte".to_string(), idx_labels(&[0, 1])),
            ("t10k-images-idx3-ubyte".to_string(), idx_images(1)),
            ("t10k-labels-idx1-ubyte".to_string(), idx_labels(&[25])),
        ];
        let (train, test) = datasets_from_files(FileSetKind::Idx, &files).unwrap();
        assert_eq!((train.classes, test.classes), (26, 26));
    }

    #[test]
    fn a_missing_part_is_named() {
        let files = vec![("train-images-idx3-ubyte".to_string(), idx_images(1))];
        let err = datasets_from_files(FileSetKind::Idx, &files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("train labels file"), "{err}");
        let err = datasets_from_files(FileSetKind::Cifar10, &files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("training batch"), "{err}");
    }
}
