//! Event data: every decoder on files written here in its exact format (good, truncated, lying
//! headers, coordinates outside the sensor, timestamps going backwards, empty samples), the
//! frame integration against a hand-computed example, the three folder layouts and splits, the
//! frames cache round trip and its mismatch messages, the events encoding in the model, and a
//! short training run on generated event data whose loss falls.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::data::events::*;
use bitspike::data::{Dataset, NamedBytes};
use bitspike::model::summary::Summary;
use bitspike::model::{Encoding, ModelConfig};
use bitspike::train::{TrainConfig, Trainer};

fn ev(t: u64, x: u16, y: u16, on: bool) -> Event {
    Event { t, x, y, on }
}

fn rejected<T: std::fmt::Debug>(r: Result<T, EventDataError>, needles: &[&str]) -> String {
    let text = r.expect_err("malformed input must be rejected").to_string();
    println!("rejected as expected: {text}");
    for n in needles {
        assert!(text.contains(n), "`{text}` does not mention `{n}`");
    }
    text
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bitspike-events-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------- N-MNIST

#[test]
fn nmnist_decodes_the_5_byte_records() {
    // Written by hand: x=3, y=33, ON, t = 0x7f_fffe (the largest 23-bit values); then x=0,
    // y=1, OFF, t = 0x7f_ffff.
    let bytes = [3, 33, 0x80 | 0x7f, 0xff, 0xfe, 0, 1, 0x7f, 0xff, 0xff];
    let events = decode_nmnist("a.bin", &bytes).unwrap();
    println!("{events:?}");
    assert_eq!(
        events,
        vec![ev(0x7f_fffe, 3, 33, true), ev(0x7f_ffff, 0, 1, false)]
    );
    let back = encode_nmnist(&events);
    assert_eq!(back, bytes);
    assert!(decode_nmnist("empty.bin", &[]).unwrap().is_empty());
}

#[test]
fn nmnist_rejects_truncated_outside_and_backwards() {
    let good = encode_nmnist(&[ev(10, 1, 1, true), ev(20, 2, 2, false)]);
    rejected(
        decode_nmnist("Train/1/t.bin", &good[..7]),
        &["Train/1/t.bin", "truncated", "5-byte"],
    );
    rejected(
        decode_nmnist("o.bin", &encode_nmnist(&[ev(1, 34, 0, true)])),
        &["o.bin", "(34, 0)", "34x34"],
    );
    rejected(
        decode_nmnist(
            "b.bin",
            &encode_nmnist(&[ev(50, 1, 1, true), ev(49, 1, 1, true)]),
        ),
        &["b.bin", "backwards", "event 1", "49 us after 50 us"],
    );
}

// ---------------------------------------------------------------- AEDAT 3.1 (DVS Gesture)

fn packet(kind: u16, size: u32, overflow: u32, capacity: u32, number: u32, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&kind.to_le_bytes());
    p.extend_from_slice(&1u16.to_le_bytes());
    for v in [size, 4, overflow, capacity, number, number] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(data);
    p
}

fn polarity_word(x: u32, y: u32, on: bool, valid: bool) -> u32 {
    (x << 17) | (y << 2) | ((on as u32) << 1) | valid as u32
}

fn polarity_data(events: &[(u32, u32, bool, bool, u32)]) -> Vec<u8> {
    let mut d = Vec::new();
    for &(x, y, on, valid, t) in events {
        d.extend_from_slice(&polarity_word(x, y, on, valid).to_le_bytes());
        d.extend_from_slice(&t.to_le_bytes());
    }
    d
}

const AEDAT3_HEADER: &[u8] = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n";

#[test]
fn aedat3_decodes_polarity_packets_and_skips_the_rest() {
    let mut file = AEDAT3_HEADER.to_vec();
    file.extend(packet(
        1,
        8,
        0,
        3,
        3,
        &polarity_data(&[
            (127, 0, true, true, 100),
            (5, 6, false, false, 150), // invalid: dropped
            (0, 127, false, true, 200),
        ]),
    ));
    // A special-event packet (type 0, 8 bytes per event): skipped.
    file.extend(packet(0, 8, 0, 1, 1, &[9; 8]));
    // Overflow 1: timestamps continue past 2^31.
    file.extend(packet(
        1,
        8,
        1,
        1,
        1,
        &polarity_data(&[(64, 65, true, true, 7)]),
    ));
    let events = decode_aedat3("user01_led.aedat", &file, 128, 128).unwrap();
    println!("{events:?}");
    assert_eq!(
        events,
        vec![
            ev(100, 127, 0, true),
            ev(200, 0, 127, false),
            ev((1u64 << 31) | 7, 64, 65, true)
        ]
    );
    // The writer produces what the reader reads.
    let again = decode_aedat3("w.aedat", &encode_aedat3(&events[..2], 1), 128, 128).unwrap();
    assert_eq!(again, events[..2]);
    // A header and no packets: no events.
    assert!(decode_aedat3("h.aedat", AEDAT3_HEADER, 128, 128)
        .unwrap()
        .is_empty());
}

#[test]
fn aedat3_rejects_bad_headers_truncation_lies_outside_and_backwards() {
    let one = packet(1, 8, 0, 1, 1, &polarity_data(&[(1, 2, true, true, 5)]));
    let with = |p: &[u8]| [AEDAT3_HEADER, p].concat();
    rejected(
        decode_aedat3("x.aedat", b"#!AER-DAT2.0\r\n", 128, 128),
        &["x.aedat", "AEDAT 3"],
    );
    rejected(
        decode_aedat3("x.aedat", b"#!AER-DAT3.1\r\n#no end\r\n", 128, 128),
        &["x.aedat", "END-HEADER"],
    );
    // Truncated inside the packet header, and inside the events.
    rejected(
        decode_aedat3("t.aedat", &with(&one[..20]), 128, 128),
        &["t.aedat", "truncated", "packet 0"],
    );
    rejected(
        decode_aedat3("t.aedat", &with(&one[..30]), 128, 128),
        &["t.aedat", "truncated", "8 bytes"],
    );
    // A lying capacity (4 billion events) is refused before anything is allocated.
    let lie = packet(
        1,
        8,
        0,
        u32::MAX,
        1,
        &polarity_data(&[(1, 2, true, true, 5)]),
    );
    rejected(
        decode_aedat3("lie.aedat", &with(&lie), 128, 128),
        &["lie.aedat", "4294967295 events"],
    );
    let wrong_size = packet(1, 12, 0, 1, 1, &[0; 12]);
    rejected(
        decode_aedat3("s.aedat", &with(&wrong_size), 128, 128),
        &["s.aedat", "12 bytes"],
    );
    let more_than_capacity = packet(1, 8, 0, 1, 2, &[0; 8]);
    rejected(
        decode_aedat3("n.aedat", &with(&more_than_capacity), 128, 128),
        &["number 2"],
    );
    let outside = packet(1, 8, 0, 1, 1, &polarity_data(&[(128, 3, true, true, 5)]));
    rejected(
        decode_aedat3("o.aedat", &with(&outside), 128, 128),
        &["o.aedat", "(128, 3)", "128x128"],
    );
    let back = packet(
        1,
        8,
        0,
        2,
        2,
        &polarity_data(&[(1, 1, true, true, 9), (1, 1, true, true, 8)]),
    );
    rejected(
        decode_aedat3("b.aedat", &with(&back), 128, 128),
        &["b.aedat", "backwards", "event 1"],
    );
}

#[test]
fn gesture_labels_and_trial_lists_parse_and_reject_nonsense() {
    let csv = b"class,startTime_usec,endTime_usec\n1,100,200\r\n11,300,400\n\n";
    let segs = parse_gesture_labels("u_labels.csv", csv).unwrap();
    assert_eq!(
        segs,
        vec![
            GestureSegment {
                class: 0,
                start: 100,
                end: 200
            },
            GestureSegment {
                class: 10,
                start: 300,
                end: 400
            }
        ]
    );
    rejected(
        parse_gesture_labels("l.csv", b"class\n12,1,2\n"),
        &["l.csv", "line 2", "class 12"],
    );
    rejected(
        parse_gesture_labels("l.csv", b"3,5,5\n"),
        &["line 1", "not after"],
    );
    rejected(
        parse_gesture_labels("l.csv", b"3,5\n"),
        &["line 1", "expected"],
    );
    rejected(parse_gesture_labels("l.csv", b"3,x,9\n"), &["`x`"]);
    assert_eq!(
        parse_trial_list(
            "trials_to_train.txt",
            b"user01_led.aedat\r\n\nuser02_led.aedat\n"
        )
        .unwrap(),
        vec!["user01_led.aedat", "user02_led.aedat"]
    );
    rejected(
        parse_trial_list("trials_to_test.txt", b"../etc/passwd\n"),
        &["trials_to_test.txt", "line 1"],
    );
}

fn gesture_files() -> Vec<NamedBytes> {
    // user01: two gestures, events 0..10 at t = 0, 10, .., 90 (x = i); the second gesture
    // [1000, 2000) has no events (an empty sample). user02: one gesture.
    let rec1: Vec<Event> = (0..10)
        .map(|i| ev(i * 10, i as u16, 1, i % 2 == 0))
        .collect();
    let rec2: Vec<Event> = (0..4).map(|i| ev(5 + i, 2, 2, true)).collect();
    vec![
        (
            "DvsGesture/trials_to_train.txt".into(),
            b"user01_led.aedat\n".to_vec(),
        ),
        (
            "DvsGesture/trials_to_test.txt".into(),
            b"user02_led.aedat\n".to_vec(),
        ),
        (
            "DvsGesture/user01_led.aedat".into(),
            encode_aedat3(&rec1, 3),
        ),
        (
            "DvsGesture/user01_led_labels.csv".into(),
            b"class,startTime_usec,endTime_usec\n4,20,60\n2,1000,2000\n".to_vec(),
        ),
        (
            "DvsGesture/user02_led.aedat".into(),
            encode_aedat3(&rec2, 10),
        ),
        (
            "DvsGesture/user02_led_labels.csv".into(),
            b"11,0,100\n".to_vec(),
        ),
    ]
}

#[test]
fn dvs_gesture_cuts_recordings_into_labelled_gestures() {
    let settings = FrameSettings::full(2, (128, 128));
    let data = event_datasets_from_files(EventKind::DvsGesture, &gesture_files(), &settings, None)
        .unwrap();
    let (train, test) = (&data.train, &data.test);
    println!(
        "{}: train labels {:?}, test labels {:?}",
        data.note, train.labels, test.labels
    );
    assert_eq!(train.labels, vec![3, 1]);
    assert_eq!(test.labels, vec![10]);
    assert_eq!(
        (train.channels, train.height, train.width, train.classes),
        (4, 128, 128, 11)
    );
    // Gesture 1 = events at t = 20, 30, 40, 50 (x = 2..5): frame 0 gets x = 2, 3, frame 1 x = 4, 5.
    let s = train.image(0);
    let px =
        |f: usize, on: bool, y: usize, x: usize| s[((f * 2 + on as usize) * 128 + y) * 128 + x];
    assert_eq!(
        (
            px(0, true, 1, 2),
            px(0, false, 1, 3),
            px(1, true, 1, 4),
            px(1, false, 1, 5)
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(s.iter().map(|&v| v as usize).sum::<usize>(), 4);
    // The empty gesture is an all-zero sample, not an error.
    assert!(train.image(1).iter().all(|&v| v == 0));
    assert_eq!(test.image(0).iter().map(|&v| v as usize).sum::<usize>(), 4);

    let mut missing = gesture_files();
    missing.retain(|(n, _)| !n.ends_with("user02_led_labels.csv"));
    rejected(
        event_datasets_from_files(EventKind::DvsGesture, &missing, &settings, None),
        &["user02_led_labels.csv"],
    );
    let mut broken = gesture_files();
    let len = broken[2].1.len();
    broken[2].1.truncate(len - 3);
    rejected(
        event_datasets_from_files(EventKind::DvsGesture, &broken, &settings, None),
        &["DvsGesture/user01_led.aedat", "truncated"],
    );
}

// ---------------------------------------------------------------- AEDAT 2.0 (CIFAR10-DVS)

fn aedat2(records: &[(u32, u32)]) -> Vec<u8> {
    let mut b = b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n".to_vec();
    for &(addr, t) in records {
        b.extend_from_slice(&addr.to_be_bytes());
        b.extend_from_slice(&t.to_be_bytes());
    }
    b
}

#[test]
fn aedat2_decodes_cifar10dvs_addresses_like_spikingjelly() {
    // Raw x = 5 (bits 7..1), y = 10 (bits 14..8), polarity bit 1 -> x' = 127 - 10, y' = 127 - 5,
    // p' = 0 (OFF). Raw x = 127, y = 0, polarity 0 -> (127, 0), ON.
    let file = aedat2(&[((10 << 8) | (5 << 1) | 1, 3), (127 << 1, 4)]);
    let events = decode_aedat2_cifar10dvs("cat/cifar10_cat_0.aedat", &file).unwrap();
    println!("{events:?}");
    assert_eq!(events, vec![ev(3, 117, 122, false), ev(4, 127, 0, true)]);
    assert_eq!(
        decode_aedat2_cifar10dvs("w.aedat", &encode_aedat2_cifar10dvs(&events)).unwrap(),
        events
    );
    assert!(decode_aedat2_cifar10dvs("e.aedat", &aedat2(&[]))
        .unwrap()
        .is_empty());
}

#[test]
fn aedat2_rejects_bad_header_truncation_foreign_addresses_and_backwards() {
    rejected(
        decode_aedat2_cifar10dvs("x.aedat", b"\x00\x00\x00\x01"),
        &["x.aedat", "AER-DAT2.0"],
    );
    let good = aedat2(&[(1, 1), (2, 2)]);
    rejected(
        decode_aedat2_cifar10dvs("t.aedat", &good[..good.len() - 3]),
        &["t.aedat", "truncated", "8-byte"],
    );
    rejected(
        decode_aedat2_cifar10dvs("o.aedat", &aedat2(&[(0x8000, 1)])),
        &["o.aedat", "0x00008000", "event 0"],
    );
    rejected(
        decode_aedat2_cifar10dvs("b.aedat", &aedat2(&[(1, 9), (1, 8)])),
        &["b.aedat", "backwards"],
    );
}

#[test]
fn cifar10dvs_splits_9_to_1_per_class_in_file_name_order() {
    let one = aedat2(&[(1 << 1, 1)]);
    let mut files: Vec<NamedBytes> = Vec::new();
    for i in 0..11 {
        files.push((format!("airplane/cifar10_airplane_{i}.aedat"), one.clone()));
    }
    for i in 0..3 {
        // Class from the original file name alone (the browser's picker gives no folders).
        files.push((format!("cifar10_truck_{i}.aedat"), one.clone()));
    }
    files.push(("notes/readme.txt".into(), b"x".to_vec()));
    let settings = FrameSettings {
        frames: 1,
        height: 48,
        width: 48,
        clip: false,
    };
    let d = event_datasets_from_files(EventKind::Cifar10Dvs, &files, &settings, None).unwrap();
    // airplane: ceil(0.9 * 11) = 10 train, 1 test; truck: ceil(2.7) = 3 train, 0 test.
    println!("train {:?} test {:?}", d.train.labels, d.test.labels);
    // Classes interleave (rank within class, then class).
    assert_eq!(
        d.train.labels,
        [vec![0, 9, 0, 9, 0, 9], vec![0; 7]].concat()
    );
    assert_eq!(d.test.labels, vec![0]);
    assert_eq!(
        (d.train.channels, d.train.height, d.train.width),
        (2, 48, 48)
    );
    // File-name order: the test file is the last name in sort order, cifar10_airplane_9.
    let mut marked = files.clone();
    marked[9].1 = aedat2(&[(1 << 1, 1), (1 << 1, 2)]); // cifar10_airplane_9: two events
    let d = event_datasets_from_files(EventKind::Cifar10Dvs, &marked, &settings, None).unwrap();
    assert_eq!(d.test.images.iter().map(|&v| v as usize).sum::<usize>(), 2);
    // A seeded split is repeatable and differs from file order for some seed.
    let a = event_datasets_from_files(EventKind::Cifar10Dvs, &marked, &settings, Some(3)).unwrap();
    let b = event_datasets_from_files(EventKind::Cifar10Dvs, &marked, &settings, Some(3)).unwrap();
    assert_eq!(a, b);
    assert!((0..20u64).any(|s| {
        let d =
            event_datasets_from_files(EventKind::Cifar10Dvs, &marked, &settings, Some(s)).unwrap();
        d.test.images.iter().map(|&v| v as usize).sum::<usize>() == 1
    }));
    rejected(
        event_datasets_from_files(EventKind::Cifar10Dvs, &files[14..], &settings, None),
        &["no CIFAR10-DVS .aedat files"],
    );
}

// ---------------------------------------------------------------- frames

#[test]
// The indices are written out as ((t * 2 + polarity) * 4 + y) * 4 + x, zeros included.
#[allow(clippy::identity_op, clippy::erasing_op)]
fn frames_match_a_hand_computed_example() {
    // 7 events, T = 3: split_by='number' gives 7 / 3 = 2 events per slice, the last slice
    // takes the remainder: [0, 2), [2, 4), [4, 7).
    assert_eq!(slice_bounds(7, 3), vec![(0, 2), (2, 4), (4, 7)]);
    assert_eq!(slice_bounds(2, 3), vec![(0, 0), (0, 0), (0, 2)]);
    let events = [
        ev(0, 0, 0, true),
        ev(1, 0, 0, true), // slice 0: ON (0,0) twice
        ev(2, 3, 1, false),
        ev(3, 3, 1, true), // slice 1: OFF and ON at (3,1)
        ev(4, 1, 2, false),
        ev(5, 1, 2, false),
        ev(6, 2, 3, true), // slice 2: OFF (1,2) twice, ON (2,3)
    ];
    let settings = FrameSettings::full(3, (4, 4));
    let f = events_to_frames(&events, (4, 4), &settings);
    // [T=3, 2, 4, 4]: index ((t * 2 + polarity) * 4 + y) * 4 + x, polarity 0 = OFF.
    let mut expected = vec![0u8; 3 * 2 * 16];
    expected[(1 * 4 + 0) * 4 + 0] = 2; // t0 ON (0,0)
    expected[((2 + 0) * 4 + 1) * 4 + 3] = 1; // t1 OFF (3,1)
    expected[((2 + 1) * 4 + 1) * 4 + 3] = 1; // t1 ON (3,1)
    expected[((4 + 0) * 4 + 2) * 4 + 1] = 2; // t2 OFF (1,2)
    expected[((4 + 1) * 4 + 3) * 4 + 2] = 1; // t2 ON (2,3)
    assert_eq!(f, expected);
    // Clipped: counts become 1.
    let clipped = events_to_frames(
        &events,
        (4, 4),
        &FrameSettings {
            clip: true,
            ..settings
        },
    );
    assert_eq!(
        clipped,
        expected.iter().map(|&v| v.min(1)).collect::<Vec<_>>()
    );
    // Downsampled 4x4 -> 2x2 (x' = x * 2 / 4), one frame: ON (0,0) 2 + ON (3,1)->(1,0) 1 +
    // ON (2,3)->(1,1) 1; OFF (3,1)->(1,0) 1 + OFF (1,2)->(0,1) 2.
    let small = events_to_frames(
        &events,
        (4, 4),
        &FrameSettings {
            frames: 1,
            height: 2,
            width: 2,
            clip: false,
        },
    );
    assert_eq!(small, vec![0, 1, 2, 0, /* ON */ 2, 1, 0, 1]);
    // Counts saturate at 255 instead of wrapping.
    let many = vec![ev(0, 1, 1, true); 300];
    assert_eq!(
        events_to_frames(&many, (4, 4), &FrameSettings::full(1, (4, 4)))[16 + 5],
        255
    );
    // Settings are checked: no upsampling, no zero or absurd frame counts.
    assert!(FrameSettings {
        frames: 2,
        height: 5,
        width: 4,
        clip: false
    }
    .check((4, 4))
    .is_err());
    assert!(FrameSettings::full(0, (4, 4)).check((4, 4)).is_err());
    assert!(FrameSettings::full(MAX_FRAMES + 1, (4, 4))
        .check((4, 4))
        .is_err());
}

// ---------------------------------------------------------------- N-MNIST folders and the cache

fn write_nmnist_dir(dir: &std::path::Path) {
    for (split, n) in [("Train", 3), ("Test", 1)] {
        for digit in [0u8, 7] {
            let folder = dir.join(split).join(digit.to_string());
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                let events: Vec<Event> = (0..(5 + i as u64))
                    .map(|k| ev(k, digit as u16 + k as u16, 3, k % 2 == 0))
                    .collect();
                std::fs::write(
                    folder.join(format!("{:05}.bin", i + 1)),
                    encode_nmnist(&events),
                )
                .unwrap();
            }
        }
    }
    // An empty sample and files the loader ignores.
    std::fs::write(dir.join("Train/7/00099.bin"), b"").unwrap();
    std::fs::write(dir.join("Train/README.txt"), b"x").unwrap();
}

#[test]
fn nmnist_folder_loads_and_the_cache_round_trips() {
    let dir = tmp_dir("nmnist");
    write_nmnist_dir(&dir);
    let settings = FrameSettings::full(2, (34, 34));
    let cache = CacheUse::ReadWrite(dir.clone());
    let built = load_event_datasets(EventKind::NMnist, &dir, &settings, None, &cache).unwrap();
    println!("{}", built.note);
    assert!(built.note.contains("cached in"), "{}", built.note);
    // File-name order (MNIST indices), digits interleaved.
    assert_eq!(built.train.labels, vec![0, 7, 0, 7, 0, 7, 7]);
    assert_eq!(built.test.labels, vec![0, 7]);
    assert!(
        built.train.image(6).iter().all(|&v| v == 0),
        "the empty file is an all-zero sample"
    );
    assert_eq!(
        built
            .train
            .image(0)
            .iter()
            .map(|&v| v as usize)
            .sum::<usize>(),
        5
    );
    let cache_file = dir.join(cache_file_name(EventKind::NMnist, &settings, None));
    assert!(cache_file.exists());
    let again = load_event_datasets(EventKind::NMnist, &dir, &settings, None, &cache).unwrap();
    println!("{}", again.note);
    assert!(again.note.contains("read from"));
    assert_eq!(
        (again.train, again.test),
        (built.train.clone(), built.test.clone())
    );

    // The file by itself (the web app's "frames file") decodes to the same data.
    let bytes = std::fs::read(&cache_file).unwrap();
    let f = decode_frames_file("c.frames", &bytes).unwrap();
    assert_eq!(
        (f.kind, f.settings, f.split_seed),
        (EventKind::NMnist, settings, None)
    );
    assert_eq!((&f.train, &f.test), (&built.train, &built.test));
    let plain = built.train.images.len() + built.test.images.len();
    println!("cache {} bytes for {plain} bytes of frames", bytes.len());

    // Malformed frames files.
    rejected(
        decode_frames_file("c.frames", &bytes[..40]),
        &["c.frames", "not a bitspike frames file"],
    );
    rejected(
        decode_frames_file("c.frames", &bytes[..bytes.len() - 20]),
        &["c.frames"],
    );
    let mut lying = bytes.clone();
    lying[48..56].copy_from_slice(&u64::MAX.to_le_bytes()); // train count
    rejected(
        decode_frames_file("c.frames", &lying),
        &["c.frames", "limit"],
    );
    let mut more = bytes.clone();
    more[56..64].copy_from_slice(&3u64.to_le_bytes()); // test count 2 -> 3
    rejected(
        decode_frames_file("c.frames", &more),
        &["c.frames", "truncated"],
    );

    // The data changed: a clear message, not stale frames.
    std::fs::write(
        dir.join("Train/0/00042.bin"),
        encode_nmnist(&[ev(1, 1, 1, true)]),
    )
    .unwrap();
    rejected(
        load_event_datasets(EventKind::NMnist, &dir, &settings, None, &cache),
        &["other event files", "--rebuild-cache"],
    );
    let rebuilt = load_event_datasets(
        EventKind::NMnist,
        &dir,
        &settings,
        None,
        &CacheUse::Rebuild(dir.clone()),
    )
    .unwrap();
    assert_eq!(rebuilt.train.len(), 8);
    assert!(load_event_datasets(EventKind::NMnist, &dir, &settings, None, &cache).is_ok());

    // A cache holding other settings under this name (renamed by hand): the settings are named.
    let other = FrameSettings::full(3, (34, 34));
    let other_name = dir.join(cache_file_name(EventKind::NMnist, &other, None));
    std::fs::copy(&cache_file, &other_name).unwrap();
    rejected(
        load_event_datasets(EventKind::NMnist, &dir, &other, None, &cache),
        &["frames: 2", "frames: 3"],
    );
    // A broken event file names itself.
    std::fs::write(dir.join("Test/7/00002.bin"), [1, 2, 3]).unwrap();
    rejected(
        load_event_datasets(EventKind::NMnist, &dir, &settings, None, &CacheUse::Off),
        &["Test/7/00002.bin", "truncated"],
    );
    // No N-MNIST layout at all.
    let empty = tmp_dir("nmnist-empty");
    rejected(
        load_event_datasets(EventKind::NMnist, &empty, &settings, None, &CacheUse::Off),
        &["Train/<digit>/*.bin"],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

// ---------------------------------------------------------------- the model

#[test]
fn event_presets_take_t_frames_and_count_event_input_as_accumulates() {
    for (name, input, t, classes) in [
        ("nmnist", [2, 34, 34], 10, 10),
        ("dvsgesture", [2, 32, 32], 16, 11),
        ("cifar10dvs", [2, 48, 48], 10, 10),
    ] {
        let m = ModelConfig::preset(name).unwrap();
        assert_eq!(
            (m.input, m.timesteps, m.classes, m.encoding),
            (input, t, classes, Encoding::Events)
        );
        assert_eq!(m.data_shape(), [2 * t, input[1], input[2]]);
        bitspike::model::plan(&m).unwrap();
        let s = Summary::new(&m).unwrap();
        assert!(
            s.rows[0].spike_input,
            "{name}: event input drives conv1 with accumulates"
        );
        // The same network fed analog frames pays conv1 in MACs; with events it is ACs.
        let direct = Summary::new(&ModelConfig {
            encoding: Encoding::Direct,
            ..m.clone()
        })
        .unwrap();
        let ((acs, macs, _), (acs_d, macs_d, _)) =
            (s.energy_joules(None), direct.energy_joules(None));
        println!("{name}: conv1 {} ops; events {acs:.3e} AC {macs:.3e} MAC, direct {acs_d:.3e} AC {macs_d:.3e} MAC", s.rows[0].ops);
        assert_eq!(macs_d - macs, s.rows[0].ops as f64);
        assert_eq!(acs - acs_d, s.rows[0].ops as f64);
        // A measured event rate scales conv1's accumulates.
        let mut rates = vec![1.0; s.rows.len()];
        rates[0] = 0.25;
        let (acs_r, _, _) = s.energy_joules(Some(&rates));
        assert_eq!(acs - acs_r, 0.75 * s.rows[0].ops as f64);
    }
    // Direct encoding is unchanged: the first layer's input is analog (MACs).
    assert!(!Summary::new(&ModelConfig::mnist()).unwrap().rows[0].spike_input);
    assert_eq!(ModelConfig::mnist().data_shape(), [1, 28, 28]);
}

#[test]
fn short_training_run_on_generated_events_loss_falls() {
    let Some(ctx) = common::gpu() else { return };
    // Synthetic N-MNIST-shaped events from embedded digits, written as .bin files, loaded
    // through the folder loader like the real set.
    let dir = tmp_dir("train");
    let mnist = |split| bitspike::data::embedded_mnist10k(split).unwrap();
    let train_digits = mnist(bitspike::data::EmbeddedSplit::Train).truncated(96);
    let test_digits = mnist(bitspike::data::EmbeddedSplit::Test).truncated(32);
    synthetic::write_synthetic_nmnist(&dir, &train_digits, &test_digits, 5).unwrap();
    let mut model = ModelConfig::nmnist();
    model.timesteps = 4;
    let settings = FrameSettings::full(4, (34, 34));
    let data =
        load_event_datasets(EventKind::NMnist, &dir, &settings, None, &CacheUse::Off).unwrap();
    let (train, test): (Dataset, Dataset) = (data.train, data.test);
    assert_eq!((train.len(), test.len(), train.channels), (96, 32, 8));
    let config = TrainConfig {
        epochs: 3,
        batch: 16,
        lr: 2e-3,
        log_every: 1000,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&ctx, &model, config, train.len()).unwrap();
    let mut records = Vec::new();
    while !trainer.finished() {
        let r = trainer.run_epoch(&ctx, &train, &test, &mut |_| {}).unwrap();
        println!(
            "epoch {} train loss {:.4} acc {:.3} test acc {:.3} rates {:?}",
            r.epoch, r.train_loss, r.train_accuracy, r.test_accuracy, r.firing_rate
        );
        records.push(r);
    }
    assert!(
        records[2].train_loss < records[0].train_loss * 0.9,
        "loss did not fall: {} -> {}",
        records[0].train_loss,
        records[2].train_loss
    );
    // A data set with other frames than the model's T is refused with a message.
    let mut five = model.clone();
    five.timesteps = 5;
    let mut t5 = Trainer::new(&ctx, &five, TrainConfig::default(), train.len()).unwrap();
    let err = t5
        .run_epoch(&ctx, &train, &test, &mut |_| {})
        .unwrap_err()
        .to_string();
    println!("refused as expected: {err}");
    assert!(err.contains("event frames"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- the app

#[test]
fn the_app_loads_frames_files_and_refuses_broken_event_files() {
    use bitspike::app::files::Purpose;
    use bitspike::app::{AppOptions, BitspikeApp};
    use std::sync::Arc;
    let Some(ctx) = common::gpu() else { return };
    let gpu = Arc::new(ctx);
    let mut app = BitspikeApp::with_gpu(Some(gpu), AppOptions::default(), Arc::default());
    app.boot();
    let label = app.data_label().to_string();
    // Broken input: a message, data and run untouched.
    let mut broken = gesture_files();
    broken[2].1.truncate(40);
    for (purpose, files, expected) in [
        (
            Purpose::Frames,
            vec![("x.frames".to_string(), b"BSFRAMES".to_vec())],
            "x.frames",
        ),
        (
            Purpose::Events(EventKind::DvsGesture),
            broken,
            "user01_led.aedat",
        ),
        (
            Purpose::Events(EventKind::NMnist),
            vec![("00001.bin".to_string(), encode_nmnist(&[ev(1, 1, 1, true)]))],
            "Train/<digit>/*.bin",
        ),
    ] {
        app.open_files(purpose, files);
        let err = app.error().unwrap_or_default().to_string();
        println!("{purpose:?}: {err}");
        assert!(err.contains(expected), "{purpose:?}: {err}");
        assert_eq!(app.data_label(), label);
    }
    // A good frames file: the data, T = its frames, the nmnist preset, an events model.
    let frames = FrameSettings::full(3, (34, 34));
    let sample = |digit: u16| {
        events_to_frames(
            &[ev(0, digit, 2, true), ev(1, 3, digit, false)],
            (34, 34),
            &frames,
        )
    };
    let split = |digits: &[u16]| Dataset {
        images: digits.iter().flat_map(|&d| sample(d)).collect(),
        labels: digits.iter().map(|&d| d as u8).collect(),
        channels: 6,
        height: 34,
        width: 34,
        classes: 10,
    };
    let file = FramesFile {
        kind: EventKind::NMnist,
        settings: frames,
        split_seed: None,
        fingerprint: 1,
        train: split(&[1, 2, 3, 4]),
        test: split(&[5, 6]),
    };
    app.open_files(
        Purpose::Frames,
        vec![("n.frames".into(), encode_frames_file(&file))],
    );
    println!("{}", app.data_label());
    assert!(app
        .data_label()
        .starts_with("nmnist: 4 train / 2 test, 3 event frames"));
    let model = app
        .session()
        .expect("a run on the event data")
        .trainer
        .model()
        .clone();
    assert_eq!(
        (model.name.as_str(), model.timesteps, model.encoding),
        ("nmnist", 3, Encoding::Events)
    );
}
