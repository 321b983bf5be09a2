//! jAER AEDAT 2.0 files as CIFAR10-DVS ships them: text header lines starting with `#`
//! (`#!AER-DAT2.0` first), then 8 bytes per event, big-endian: a 32-bit address and a 32-bit
//! timestamp in microseconds. CIFAR10-DVS addresses (DVS128): x in bits 7..1, y in bits 14..8,
//! polarity in bit 0; like SpikingJelly and tonic we mirror the recording so that objects are
//! upright (`x' = 127 - y`, `y' = 127 - x`) and flip polarity (`p' = 1 - p`, 1 = ON).

use super::{check_events, check_file_size, Event, EventDataError, EventKind};

/// Bytes per AEDAT 2.0 event.
pub const AEDAT2_EVENT_BYTES: usize = 8;

/// Address bits a DVS128 polarity event may use (x, y, polarity). Anything above is a special
/// or external event or another sensor's address: the file is not what we expect.
const DVS128_ADDRESS_BITS: u32 = 0x7fff;

/// Length of the `#` header lines at the start of an AEDAT 2.0 file.
fn header_len(bytes: &[u8]) -> usize {
    let mut at = 0;
    while at < bytes.len() && bytes[at] == b'#' {
        match bytes[at..].iter().position(|&b| b == b'\n') {
            Some(end) => at += end + 1,
            None => return bytes.len(),
        }
    }
    at
}

/// Decodes a CIFAR10-DVS `.aedat` file into its events (file order), checking the header, the
/// record size, the address space and that time never goes backwards.
pub fn decode_aedat2_cifar10dvs(file: &str, bytes: &[u8]) -> Result<Vec<Event>, EventDataError> {
    check_file_size(file, bytes.len() as u64)?;
    if !bytes.starts_with(b"#!AER-DAT2") {
        return Err(EventDataError::BadHeader {
            file: file.to_string(),
            message: "does not start with `#!AER-DAT2.0` (not a jAER AEDAT 2.0 file)".into(),
        });
    }
    let start = header_len(bytes);
    let body = &bytes[start..];
    if !body.len().is_multiple_of(AEDAT2_EVENT_BYTES) {
        return Err(EventDataError::Truncated {
            file: file.to_string(),
            message: format!(
                "{} bytes after the {start}-byte header is not a whole number of \
                 {AEDAT2_EVENT_BYTES}-byte events ({} left over)",
                body.len(),
                body.len() % AEDAT2_EVENT_BYTES
            ),
        });
    }
    let mut events = Vec::with_capacity(body.len() / AEDAT2_EVENT_BYTES);
    for (index, r) in body.chunks_exact(AEDAT2_EVENT_BYTES).enumerate() {
        let address = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let t = u32::from_be_bytes([r[4], r[5], r[6], r[7]]) as u64;
        if address & !DVS128_ADDRESS_BITS != 0 {
            return Err(EventDataError::BadHeader {
                file: file.to_string(),
                message: format!(
                    "event {index} has address 0x{address:08x}, outside the DVS128 polarity \
                     address space 0x0000..0x7fff"
                ),
            });
        }
        let x = (address & 0xfe) >> 1;
        let y = (address & 0x7f00) >> 8;
        events.push(Event {
            x: (127 - y) as u16,
            y: (127 - x) as u16,
            on: address & 1 == 0,
            t,
        });
    }
    let (width, height) = EventKind::Cifar10Dvs.sensor();
    check_events(file, &events, width, height)?;
    Ok(events)
}

/// Encodes events as a CIFAR10-DVS AEDAT 2.0 file (the inverse of
/// [`decode_aedat2_cifar10dvs`]; test writers and synthetic data). Coordinates must be < 128.
pub fn encode_aedat2_cifar10dvs(events: &[Event]) -> Vec<u8> {
    let mut out = b"#!AER-DAT2.0\r\n# This is a raw AE data file created by bitspike\r\n".to_vec();
    for e in events {
        let (x, y) = (127 - (e.y as u32 & 0x7f), 127 - (e.x as u32 & 0x7f));
        let address = (y << 8) | (x << 1) | (!e.on) as u32;
        out.extend_from_slice(&address.to_be_bytes());
        out.extend_from_slice(&(e.t as u32).to_be_bytes());
    }
    out
}
