//! AEDAT 3.1 files as DVS128 Gesture ships them (one recording per `userNN_<lighting>.aedat`),
//! with the `userNN_<lighting>_labels.csv` that cuts a recording into gestures and the
//! `trials_to_train.txt` / `trials_to_test.txt` lists.
//!
//! Layout: text header lines starting with `#` (`#!AER-DAT3.1` first, `#!END-HEADER` last),
//! then packets. Packet header, 28 bytes little-endian: event type (u16), source (u16), event
//! size, timestamp offset, timestamp overflow, capacity, number, valid (i32 each); then
//! `capacity * size` bytes of events. Polarity events (type 1, 8 bytes): a 32-bit word `d`
//! (valid = bit 0, polarity = bit 1, y = (d >> 2) & 0x7FFF, x = (d >> 17) & 0x7FFF) and a 32-bit
//! timestamp extended by the packet's overflow count (`t | overflow << 31`). Other packet types
//! (special events, frames, IMU) are skipped; invalid events (bit 0 clear) are dropped.

use super::{check_events, check_file_size, Event, EventDataError, EventKind};

const PACKET_HEADER_BYTES: usize = 28;
const POLARITY_EVENT: u16 = 1;
const POLARITY_EVENT_BYTES: usize = 8;
/// Largest event size any AEDAT 3.1 packet type uses is far below this; larger is a lying header.
const MAX_EVENT_SIZE: u64 = 1 << 20;
const END_HEADER: &[u8] = b"#!END-HEADER";

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes the polarity events of an AEDAT 3.1 file on a `width x height` sensor (file order),
/// checking the header, every packet's size against the bytes left, the sensor bounds and that
/// time never goes backwards.
pub fn decode_aedat3(
    file: &str,
    bytes: &[u8],
    width: usize,
    height: usize,
) -> Result<Vec<Event>, EventDataError> {
    check_file_size(file, bytes.len() as u64)?;
    let bad = |message: String| EventDataError::BadHeader {
        file: file.to_string(),
        message,
    };
    if !bytes.starts_with(b"#!AER-DAT3") {
        return Err(bad(
            "does not start with `#!AER-DAT3.1` (not an AEDAT 3 file)".into(),
        ));
    }
    let end = bytes
        .windows(END_HEADER.len())
        .position(|w| w == END_HEADER)
        .ok_or_else(|| bad("no `#!END-HEADER` line".into()))?;
    let mut at = match bytes[end..].iter().position(|&b| b == b'\n') {
        Some(nl) => end + nl + 1,
        None => bytes.len(),
    };
    let mut events = Vec::new();
    let mut packet = 0usize;
    while at < bytes.len() {
        let left = bytes.len() - at;
        if left < PACKET_HEADER_BYTES {
            return Err(EventDataError::Truncated {
                file: file.to_string(),
                message: format!(
                    "packet {packet} at byte {at}: {left} bytes left, a packet header is \
                     {PACKET_HEADER_BYTES}"
                ),
            });
        }
        let h = &bytes[at..at + PACKET_HEADER_BYTES];
        let kind = u16::from_le_bytes([h[0], h[1]]);
        let size = le_u32(h, 4) as u64;
        let overflow = le_u32(h, 12) as u64;
        let capacity = le_u32(h, 16) as u64;
        let number = le_u32(h, 20) as u64;
        if size == 0 || size > MAX_EVENT_SIZE || number > capacity {
            return Err(bad(format!(
                "packet {packet} at byte {at}: event size {size}, capacity {capacity}, number \
                 {number} (size must be 1..={MAX_EVENT_SIZE}, number <= capacity)"
            )));
        }
        if kind == POLARITY_EVENT && size != POLARITY_EVENT_BYTES as u64 {
            return Err(bad(format!(
                "packet {packet} at byte {at}: polarity events of {size} bytes, expected \
                 {POLARITY_EVENT_BYTES}"
            )));
        }
        let data_len = capacity.saturating_mul(size);
        let data_left = (left - PACKET_HEADER_BYTES) as u64;
        if data_len > data_left {
            return Err(EventDataError::Truncated {
                file: file.to_string(),
                message: format!(
                    "packet {packet} at byte {at} promises {capacity} events of {size} bytes \
                     ({data_len} bytes), {data_left} are left"
                ),
            });
        }
        let data_start = at + PACKET_HEADER_BYTES;
        let data = &bytes[data_start..data_start + data_len as usize];
        if kind == POLARITY_EVENT {
            events.reserve(number as usize);
            for r in data.chunks_exact(POLARITY_EVENT_BYTES) {
                let d = le_u32(r, 0);
                if d & 1 == 0 {
                    continue;
                }
                events.push(Event {
                    x: ((d >> 17) & 0x7fff) as u16,
                    y: ((d >> 2) & 0x7fff) as u16,
                    on: (d >> 1) & 1 == 1,
                    t: le_u32(r, 4) as u64 | (overflow << 31),
                });
            }
        }
        at = data_start + data_len as usize;
        packet += 1;
    }
    check_events(file, &events, width, height)?;
    Ok(events)
}

/// Writes polarity events as an AEDAT 3.1 file with packets of at most `per_packet` events
/// (test writers and synthetic data; the inverse of [`decode_aedat3`]).
pub fn encode_aedat3(events: &[Event], per_packet: usize) -> Vec<u8> {
    let mut out = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n".to_vec();
    for chunk in events.chunks(per_packet.max(1)) {
        let overflow = chunk.first().map_or(0, |e| (e.t >> 31) as u32);
        for v in [
            POLARITY_EVENT as u32 | (1 << 16),
            POLARITY_EVENT_BYTES as u32,
            4,
            overflow,
            chunk.len() as u32,
            chunk.len() as u32,
            chunk.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for e in chunk {
            let d = ((e.x as u32) << 17) | ((e.y as u32) << 2) | ((e.on as u32) << 1) | 1;
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(&((e.t & 0x7fff_ffff) as u32).to_le_bytes());
        }
    }
    out
}

/// One gesture of a DVS Gesture recording: class (0-based) and `[start, end)` in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GestureSegment {
    pub class: u8,
    pub start: u64,
    pub end: u64,
}

/// Parses a `*_labels.csv` file (`class,startTime_usec,endTime_usec`, classes 1..=11).
pub fn parse_gesture_labels(
    file: &str,
    bytes: &[u8],
) -> Result<Vec<GestureSegment>, EventDataError> {
    let text = std::str::from_utf8(bytes).map_err(|e| EventDataError::Labels {
        file: file.to_string(),
        line: 1,
        message: format!("not UTF-8 text: {e}"),
    })?;
    let classes = EventKind::DvsGesture.classes();
    let mut segments = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("class")) {
            continue;
        }
        let err = |message: String| EventDataError::Labels {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 3 {
            return Err(err(format!(
                "expected `class,startTime_usec,endTime_usec`, found `{line}`"
            )));
        }
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| err(format!("`{s}` is not a whole number")))
        };
        let (class, start, end) = (num(fields[0])?, num(fields[1])?, num(fields[2])?);
        if class < 1 || class > classes as u64 {
            return Err(err(format!("class {class} outside 1..={classes}")));
        }
        if end <= start {
            return Err(err(format!("end {end} us is not after start {start} us")));
        }
        segments.push(GestureSegment {
            class: (class - 1) as u8,
            start,
            end,
        });
    }
    Ok(segments)
}

/// Parses `trials_to_train.txt` / `trials_to_test.txt`: one recording file name per line.
pub fn parse_trial_list(file: &str, bytes: &[u8]) -> Result<Vec<String>, EventDataError> {
    let text = std::str::from_utf8(bytes).map_err(|e| EventDataError::Labels {
        file: file.to_string(),
        line: 1,
        message: format!("not UTF-8 text: {e}"),
    })?;
    let mut trials = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.ends_with(".aedat") || line.contains(['/', '\\']) {
            return Err(EventDataError::Labels {
                file: file.to_string(),
                line: i + 1,
                message: format!(
                    "expected a recording name like `user01_fluorescent.aedat`, found `{line}`"
                ),
            });
        }
        trials.push(line.to_string());
    }
    Ok(trials)
}
