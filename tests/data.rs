//! Data loaders on good and malformed input: every malformed file is a clear error naming the
//! file and the problem, never a panic, never an allocation trusted from a lying header.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use bitspike::data::*;

fn idx_images(count: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0803u32, count, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..pixels).map(|i| (i % 251) as u8));
    b
}

fn idx_labels(count: u32, labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x0801u32.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn err_text(r: Result<Dataset, DataError>) -> String {
    let text = r.expect_err("malformed input must be rejected").to_string();
    println!("rejected as expected: {text}");
    text
}

#[test]
fn embedded_mnist10k_has_8000_train_and_2000_test_digits() {
    let train = embedded_mnist10k(EmbeddedSplit::Train).unwrap();
    let test = embedded_mnist10k(EmbeddedSplit::Test).unwrap();
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(
        (train.channels, train.height, train.width, train.classes),
        (1, 28, 28, 10)
    );
    let mut counts = [0usize; 10];
    for &l in train.labels.iter().chain(&test.labels) {
        counts[l as usize] += 1;
    }
    println!("class counts: {counts:?}");
    assert_eq!(
        counts,
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    assert!(train.images.contains(&255) && train.images.contains(&0));
}

#[test]
fn idx_pair_loads_raw_and_gzip_identically() {
    let images = idx_images(3, 2, 5, 30);
    let labels = idx_labels(3, &[0, 9, 4]);
    let raw = load_idx_pair("i", &images, "l", &labels, 10).unwrap();
    let gz = load_idx_pair("i.gz", &gzip(&images), "l.gz", &gzip(&labels), 10).unwrap();
    assert_eq!(raw, gz);
    assert_eq!((raw.len(), raw.height, raw.width), (3, 2, 5));
    assert_eq!(raw.image(1), &images[16 + 10..16 + 20]);
}

#[test]
fn malformed_idx_files_are_clear_errors() {
    let labels = idx_labels(3, &[0, 1, 2]);
    let good = idx_images(3, 2, 2, 12);
    let mut wrong_magic = good.clone();
    wrong_magic[3] = 0x01;
    assert!(
        err_text(load_idx_pair("img.idx", &wrong_magic, "lab", &labels, 10))
            .contains("img.idx: wrong magic")
    );
    // truncated data, truncated header, lying header (4 billion images in 28 bytes)
    assert!(err_text(load_idx_pair("img", &good[..20], "lab", &labels, 10)).contains("truncated"));
    assert!(err_text(load_idx_pair("img", &good[..7], "lab", &labels, 10)).contains("truncated"));
    let lying = idx_images(u32::MAX, 28, 28, 12);
    assert!(err_text(load_idx_pair("img", &lying, "lab", &labels, 10))
        .contains("promises 3367254359280 bytes of data, over the limit"));
    let lying = idx_images(1_000, 28, 28, 12);
    assert!(err_text(load_idx_pair("img", &lying, "lab", &labels, 10)).contains("truncated"));
    let mut trailing = good.clone();
    trailing.push(7);
    assert!(err_text(load_idx_pair("img", &trailing, "lab", &labels, 10)).contains("trailing"));
    let zero_rows = idx_images(3, 0, 5, 0);
    assert!(
        err_text(load_idx_pair("img", &zero_rows, "lab", &labels, 10)).contains("bad dimensions")
    );
    let two_labels = idx_labels(2, &[0, 1]);
    assert!(err_text(load_idx_pair("img", &good, "lab", &two_labels, 10)).contains("disagree"));
    let bad_label = idx_labels(3, &[0, 10, 1]);
    assert!(err_text(load_idx_pair("img", &good, "lab", &bad_label, 10))
        .contains("label 10 at sample 1"));
    // images and labels swapped
    assert!(err_text(load_idx_pair("lab", &labels, "img", &good, 10)).contains("wrong magic"));
    // a gzip stream cut in half
    let gz = gzip(&good);
    assert!(err_text(load_idx_pair(
        "img.gz",
        &gz[..gz.len() / 2],
        "lab",
        &labels,
        10
    ))
    .contains("gzip"));
}

#[test]
fn cifar_batches_load_and_malformed_ones_are_rejected() {
    let rec10 = |label: u8| {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| (i % 256) as u8));
        r
    };
    let file: Vec<u8> = [3u8, 7, 0].iter().flat_map(|&l| rec10(l)).collect();
    let ds = load_cifar(
        CifarKind::Cifar10,
        &[("data_batch_1.bin".into(), file.clone())],
    )
    .unwrap();
    assert_eq!(
        (ds.len(), ds.channels, ds.height, ds.width, ds.classes),
        (3, 3, 32, 32, 10)
    );
    assert_eq!(ds.labels, vec![3, 7, 0]);
    assert_eq!(ds.image(2)[5], 5);
    // CIFAR-100 uses the second (fine) label byte
    let mut r100 = vec![1u8, 42];
    r100.extend(std::iter::repeat_n(9u8, 3072));
    let ds100 = load_cifar(CifarKind::Cifar100, &[("train.bin".into(), r100)]).unwrap();
    assert_eq!((ds100.labels[0], ds100.classes), (42, 100));
    let text = err_text(load_cifar(
        CifarKind::Cifar10,
        &[("test_batch.bin".into(), file[..5000].to_vec())],
    ));
    assert!(text.contains("test_batch.bin") && text.contains("3073-byte records"));
    let bad: Vec<u8> = rec10(12);
    assert!(
        err_text(load_cifar(CifarKind::Cifar10, &[("b.bin".into(), bad)])).contains("label 12")
    );
    assert!(err_text(load_cifar(CifarKind::Cifar10, &[])).contains("no batch files"));
}
