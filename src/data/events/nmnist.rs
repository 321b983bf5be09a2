//! N-MNIST binary files (Orchard et al. 2015): 5 bytes per event, no header.
//! Byte 0: x; byte 1: y; byte 2: polarity in bit 7 (1 = ON) and timestamp bits 22..16;
//! bytes 3-4: timestamp bits 15..0 (microseconds, 23 bits). Sensor 34 x 34.

use super::{check_events, check_file_size, Event, EventDataError, EventKind};

/// Bytes per N-MNIST event.
pub const NMNIST_EVENT_BYTES: usize = 5;

/// Decodes one N-MNIST `.bin` file into its events (in file order), checking the record size,
/// the sensor bounds and that time never goes backwards. An empty file is an empty sample.
pub fn decode_nmnist(file: &str, bytes: &[u8]) -> Result<Vec<Event>, EventDataError> {
    check_file_size(file, bytes.len() as u64)?;
    if !bytes.len().is_multiple_of(NMNIST_EVENT_BYTES) {
        return Err(EventDataError::Truncated {
            file: file.to_string(),
            message: format!(
                "{} bytes is not a whole number of {NMNIST_EVENT_BYTES}-byte events ({} left over)",
                bytes.len(),
                bytes.len() % NMNIST_EVENT_BYTES
            ),
        });
    }
    // The count comes from the bytes present, so the allocation is bounded by the file.
    let events: Vec<Event> = bytes
        .chunks_exact(NMNIST_EVENT_BYTES)
        .map(|r| Event {
            x: r[0] as u16,
            y: r[1] as u16,
            on: r[2] & 0x80 != 0,
            t: (((r[2] & 0x7f) as u64) << 16) | ((r[3] as u64) << 8) | r[4] as u64,
        })
        .collect();
    let (width, height) = EventKind::NMnist.sensor();
    check_events(file, &events, width, height)?;
    Ok(events)
}

/// Encodes events in the N-MNIST format (the inverse of [`decode_nmnist`]; test writers and
/// synthetic data). Timestamps are taken modulo 2^23, coordinates modulo 256.
pub fn encode_nmnist(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * NMNIST_EVENT_BYTES);
    for e in events {
        let t = e.t & 0x7f_ffff;
        out.extend_from_slice(&[
            e.x as u8,
            e.y as u8,
            ((e.on as u8) << 7) | (t >> 16) as u8,
            (t >> 8) as u8,
            t as u8,
        ]);
    }
    out
}
