//! The checksummed framing: decoding any bytes never panics, and a frame that
//! decodes re-encodes to the same bytes.
#![no_main]

use leasehold_core::frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut offset = 0;
    while let Ok(Some((payload, next))) = frame::decode(data, offset) {
        let mut again = Vec::new();
        frame::encode(payload, &mut again);
        assert_eq!(&data[offset..next], again.as_slice());
        offset = next;
    }
});
