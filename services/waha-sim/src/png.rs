//! A small valid PNG that looks like a QR code, for `GET /api/{session}/auth/qr?format=image`.
//! It is not scannable: the simulated phone "scans" through the control API.

/// Modules per side, like a version-2 QR code.
const MODULES: usize = 25;
/// Quiet zone around the code, in modules.
const QUIET: usize = 4;
/// Pixels per module.
const SCALE: usize = 6;

/// A grayscale PNG of a QR-like pattern derived from `value`.
pub(crate) fn qr_png(value: &str) -> Vec<u8> {
    let side = (MODULES + 2 * QUIET) * SCALE;
    let dark = modules(value);
    let mut raw = Vec::with_capacity(side * (side + 1));
    for y in 0..side {
        raw.push(0); // filter: none
        for x in 0..side {
            let (mx, my) = (x / SCALE, y / SCALE);
            let on = (QUIET..QUIET + MODULES).contains(&mx)
                && (QUIET..QUIET + MODULES).contains(&my)
                && dark[(my - QUIET) * MODULES + (mx - QUIET)];
            raw.push(if on { 0 } else { 255 });
        }
    }
    encode_gray(u32::try_from(side).unwrap_or(u32::MAX), &raw)
}

fn modules(value: &str) -> Vec<bool> {
    // FNV-1a seed, then xorshift for the data area.
    let mut state = value.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state & 1 == 1
    };
    // The three finder patterns (7×7 rings with a light separator), as on a real QR code.
    let finder = |x: usize, y: usize| -> Option<bool> {
        let corners = [(0, 0), (MODULES - 7, 0), (0, MODULES - 7)];
        for (ox, oy) in corners {
            let (dx, dy) = (x as isize - ox as isize, y as isize - oy as isize);
            if (-1..=7).contains(&dx) && (-1..=7).contains(&dy) {
                if dx == -1 || dy == -1 || dx == 7 || dy == 7 {
                    return Some(false);
                }
                let ring = dx.min(dy).min(6 - dx).min(6 - dy);
                return Some(ring != 1);
            }
        }
        None
    };
    let mut out = Vec::with_capacity(MODULES * MODULES);
    for y in 0..MODULES {
        for x in 0..MODULES {
            out.push(finder(x, y).unwrap_or_else(&mut next));
        }
    }
    out
}

/// PNG: signature, IHDR (8-bit grayscale), one IDAT (zlib with stored blocks), IEND.
fn encode_gray(side: u32, raw: &[u8]) -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // depth 8, grayscale, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_stored(raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    let last = blocks.len() - 1;
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i == last));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1_u32, 0_u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn the_qr_image_is_a_png_of_the_expected_size() {
        let png = qr_png("2@abc");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let side = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(side as usize, (MODULES + 2 * QUIET) * SCALE);
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
        assert_ne!(qr_png("2@abc"), qr_png("2@abd"));
    }
}
