//! Offline QR codes: KOD I (invoice verification) and KOD II (issuer certificate) links, and
//! their images as SVG with the label KSeF prescribes under each code: the KSeF number (or
//! `OFFLINE` before the invoice has one) under KOD I, `CERTYFIKAT` under KOD II.
//!
//! ```
//! use ksef::model::{Environment, Nip};
//! let nip: Nip = "5265877635".parse()?;
//! let date = time::macros::date!(2026 - 02 - 01);
//! let url = ksef::qr::invoice_link(&Environment::Test, &nip, date, b"<Faktura/>")?;
//! assert!(url.starts_with("https://qr-test.ksef.mf.gov.pl/invoice/5265877635/01-02-2026/"));
//! let svg = ksef::qr::invoice_qr_svg(&url, None)?;
//! assert!(svg.starts_with("<svg") && svg.contains(">OFFLINE</text>"));
//! # Ok::<(), ksef::Error>(())
//! ```

use std::fmt::Write as _;

use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::PrivateKey;
pub use ksef_crypto::qr::{CertificateLink, ContextType};
use ksef_model::{Environment, KsefNumber, Nip};
use qrcode::{Color, EcLevel, QrCode};
use time::Date;

use crate::error::{Error, Result};

/// The label under KOD I of an invoice sent offline (no KSeF number yet).
pub const OFFLINE_LABEL: &str = "OFFLINE";
/// The label under KOD II.
pub const CERTIFICATE_LABEL: &str = "CERTYFIKAT";

/// KOD I: the verification link of an invoice (seller NIP, issue date `P_1`, SHA-256 of the XML
/// exactly as sent).
pub fn invoice_link(
    environment: &Environment,
    seller_nip: &Nip,
    issue_date: Date,
    xml: &[u8],
) -> Result<String> {
    Ok(ksef_crypto::qr::invoice_url_for_xml(
        environment.qr_base_url(),
        seller_nip.as_str(),
        issue_date,
        xml,
    )?)
}

/// KOD II: the issuer-certificate link of an offline invoice, signed with the KSeF **Offline**
/// certificate's key.
pub fn certificate_link(
    environment: &Environment,
    context_type: ContextType,
    context_value: &str,
    seller_nip: &Nip,
    offline_certificate: &Certificate,
    key: &PrivateKey,
    xml: &[u8],
) -> Result<CertificateLink> {
    Ok(ksef_crypto::qr::certificate_url(
        environment.qr_base_url(),
        context_type,
        context_value,
        seller_nip.as_str(),
        offline_certificate,
        key,
        &ksef_crypto::hash::sha256(xml),
    )?)
}

/// KOD I as SVG, labelled with the KSeF number, or `OFFLINE` when there is none yet.
pub fn invoice_qr_svg(url: &str, ksef_number: Option<&KsefNumber>) -> Result<String> {
    qr_svg(url, ksef_number.map_or(OFFLINE_LABEL, |k| k.as_str()))
}

/// KOD II as SVG, labelled `CERTYFIKAT`.
pub fn certificate_qr_svg(url: &str) -> Result<String> {
    qr_svg(url, CERTIFICATE_LABEL)
}

fn encode(url: &str) -> Result<QrCode> {
    // Medium error correction: KSeF's examples use M; links are short enough for it.
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| Error::InvalidInput(format!("cannot encode the link as a QR code: {e}")))
}

/// A QR code as a standalone SVG document with `label` centred underneath. One module is 4
/// units, with the 4-module quiet zone the standard asks for.
pub fn qr_svg(data: &str, label: &str) -> Result<String> {
    let code = encode(data)?;
    let width = code.width();
    let colors = code.to_colors();
    const M: usize = 4;
    const QUIET: usize = 4;
    let size = (width + 2 * QUIET) * M;
    let label_height = 12 * M;
    let mut path = String::with_capacity(width * width * 8);
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (x, y) = ((i % width + QUIET) * M, (i / width + QUIET) * M);
            let _ = write!(path, "M{x} {y}h{M}v{M}h-{M}z");
        }
    }
    let label = xml_escape(label);
    Ok(format!(
        concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {s} {h}\" width=\"{s}\" height=\"{h}\">",
            "<rect width=\"{s}\" height=\"{h}\" fill=\"#fff\"/>",
            "<path d=\"{p}\" fill=\"#000\"/>",
            "<text x=\"{cx}\" y=\"{ty}\" font-family=\"Arial, Helvetica, sans-serif\" font-size=\"{fs}\" text-anchor=\"middle\">{l}</text>",
            "</svg>"
        ),
        s = size,
        h = size + label_height,
        p = path,
        cx = size / 2,
        ty = size + label_height / 2,
        fs = 5 * M,
        l = label
    ))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The QR code's modules as a matrix (`true` = dark), row by row, without quiet zone: for your
/// own renderer (PDF, printer).
pub fn qr_modules(data: &str) -> Result<Vec<Vec<bool>>> {
    let code = encode(data)?;
    let w = code.width();
    Ok(code
        .to_colors()
        .chunks(w)
        .map(|row| row.iter().map(|c| *c == Color::Dark).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_label_and_modules() {
        let svg = certificate_qr_svg("https://qr-test.ksef.mf.gov.pl/certificate/Nip/1/1/AB/x/y")
            .unwrap();
        assert!(svg.contains(">CERTYFIKAT</text>"));
        assert!(svg.contains("<path d=\"M"));
        let k: KsefNumber = "5265877635-20250626-010080DD2B5E-26".parse().unwrap();
        let svg = invoice_qr_svg("https://x/invoice", Some(&k)).unwrap();
        assert!(svg.contains(">5265877635-20250626-010080DD2B5E-26</text>"));
        assert_eq!(
            qr_svg("a", "<&>").unwrap().matches("&lt;&amp;&gt;").count(),
            1
        );
        let m = qr_modules("hello").unwrap();
        assert_eq!(m.len(), m[0].len());
        // Finder pattern: the top-left corner is dark.
        assert!(m[0][0] && m[0][6] && m[6][0]);
    }
}

/// PNG rendering (feature `png`): a small grayscale encoder of our own (signature, IHDR, one
/// zlib IDAT, IEND) and a 5×7 bitmap font for the label — the label alphabet is tiny (digits,
/// `A`–`F`, `-` and the letters of `OFFLINE` and `CERTYFIKAT`), so an image/font stack would
/// cost far more build time than it saves.
#[cfg(feature = "png")]
mod png {
    use std::io::Write as _;

    use crate::error::{Error, Result};

    /// Rows of a 5×7 glyph, the 5 low bits of each byte, most significant on the left.
    fn glyph(c: char) -> Option<[u8; 7]> {
        Some(match c {
            '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
            '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
            '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
            '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
            '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
            '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
            '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
            '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
            '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
            '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
            'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
            'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
            'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
            'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
            'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
            'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
            'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
            'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
            'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
            'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
            'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
            'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
            'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
            'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
            '-' => [0, 0, 0, 0x1F, 0, 0, 0],
            ' ' => [0; 7],
            _ => return None,
        })
    }

    /// Renders `modules` (dark = true) at 4 px per module with a 4-module quiet zone and `label`
    /// underneath, as an 8-bit grayscale PNG.
    pub(super) fn render(modules: &[Vec<bool>], label: &str) -> Result<Vec<u8>> {
        const M: usize = 4;
        const QUIET: usize = 4;
        let glyphs: Vec<[u8; 7]> = label
            .chars()
            .map(|c| {
                glyph(c.to_ascii_uppercase()).ok_or_else(|| {
                    Error::InvalidInput(format!("the PNG label font has no glyph for {c:?}"))
                })
            })
            .collect::<Result<_>>()?;
        let qr_px = (modules.len() + 2 * QUIET) * M;
        // Glyphs at 2× (12 px per character) when they fit, else 1×, widening the image if needed.
        let scale = if glyphs.len() * 12 + 2 * M <= qr_px {
            2
        } else {
            1
        };
        let label_px = glyphs.len() * 6 * scale;
        let width = qr_px.max(label_px + 2 * M * 2);
        let label_h = 7 * scale + 4 * M;
        let height = qr_px + label_h;
        let mut pixels = vec![255u8; width * height];
        let x0 = (width - qr_px) / 2 + QUIET * M;
        for (y, row) in modules.iter().enumerate() {
            for (x, dark) in row.iter().enumerate() {
                if *dark {
                    for dy in 0..M {
                        let start = (QUIET * M + y * M + dy) * width + x0 + x * M;
                        pixels[start..start + M].fill(0);
                    }
                }
            }
        }
        let lx = (width - label_px) / 2;
        let ly = qr_px + M;
        for (i, g) in glyphs.iter().enumerate() {
            for (r, bits) in g.iter().enumerate() {
                for c in 0..5 {
                    if bits & (0x10 >> c) != 0 {
                        for dy in 0..scale {
                            let start = (ly + r * scale + dy) * width + lx + (i * 6 + c) * scale;
                            pixels[start..start + scale].fill(0);
                        }
                    }
                }
            }
        }
        encode(width, height, &pixels)
    }

    fn encode(width: usize, height: usize, pixels: &[u8]) -> Result<Vec<u8>> {
        let io = |e: std::io::Error| Error::io("encoding a PNG", e);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        for row in pixels.chunks(width) {
            z.write_all(&[0]).map_err(io)?; // filter: none
            z.write_all(row).map_err(io)?;
        }
        let idat = z.finish().map_err(io)?;
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&(width as u32).to_be_bytes());
        ihdr.extend_from_slice(&(height as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grayscale, deflate, no interlace
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &idat);
        chunk(&mut out, b"IEND", &[]);
        Ok(out)
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut digest = CRC.digest();
        digest.update(kind);
        digest.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&digest.finalize().to_be_bytes());
    }
}

/// KOD I as PNG (feature `png`), labelled with the KSeF number or `OFFLINE`.
#[cfg(feature = "png")]
pub fn invoice_qr_png(url: &str, ksef_number: Option<&KsefNumber>) -> Result<Vec<u8>> {
    png::render(
        &qr_modules(url)?,
        ksef_number.map_or(OFFLINE_LABEL, |k| k.as_str()),
    )
}

/// KOD II as PNG (feature `png`), labelled `CERTYFIKAT`.
#[cfg(feature = "png")]
pub fn certificate_qr_png(url: &str) -> Result<Vec<u8>> {
    png::render(&qr_modules(url)?, CERTIFICATE_LABEL)
}

#[cfg(all(test, feature = "png"))]
mod png_tests {
    use super::*;

    #[test]
    fn png_is_well_formed() {
        let k: KsefNumber = "5265877635-20250626-010080DD2B5E-26".parse().unwrap();
        let png = invoice_qr_png("https://qr-test.ksef.mf.gov.pl/invoice/x", Some(&k)).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert!(png.ends_with(&[0xAE, 0x42, 0x60, 0x82])); // IEND's CRC
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap()) as usize;
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap()) as usize;
        // Decompress IDAT and check the size and the dark top-left finder module.
        let len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&png[41..41 + len]),
            &mut raw,
        )
        .unwrap();
        assert_eq!(raw.len(), (w + 1) * h);
        assert!(certificate_qr_png("https://x/certificate").is_ok());
        assert!(qr_modules("x").is_ok());
        assert!(matches!(
            png::render(&qr_modules("x").unwrap(), "zż"),
            Err(Error::InvalidInput(_))
        ));
    }
}
