//! What a media message's URL tells us: its file name and MIME type.

use url::Url;

/// Why a `file_url` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileUrlError {
    /// Not parseable as an absolute URL.
    #[error("must be a valid URL")]
    Malformed,
    /// A scheme WAHA cannot fetch from (only http and https).
    #[error("must be an http or https URL")]
    Scheme,
}

/// A validated media URL and what was derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The URL as given (validated).
    pub url: String,
    /// Last path segment, percent-decoded; `file` when the path has none.
    pub filename: String,
    /// Guessed from the file name's extension; `application/octet-stream` when unknown.
    pub mimetype: String,
}

/// Validates an http(s) URL and derives the file name and MIME type WAHA will be given.
pub fn file_meta_from_url(input: &str) -> Result<FileMeta, FileUrlError> {
    let url = Url::parse(input.trim()).map_err(|_| FileUrlError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FileUrlError::Scheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FileUrlError::Malformed);
    }
    let segment = url
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .unwrap_or_default();
    let decoded = percent_decode(&segment);
    let filename = if decoded.trim().is_empty() {
        "file".to_owned()
    } else {
        decoded
    };
    let mimetype = mime_guess::from_path(&filename)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok(FileMeta {
        url: input.trim().to_owned(),
        filename,
        mimetype,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a client-supplied MIME type looks like `type/subtype`.
pub fn is_valid_mimetype(value: &str) -> bool {
    let mut parts = value.splitn(2, '/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.len() <= 127
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        })
    };
    ok(parts.next()) && ok(parts.next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_url() {
        let m =
            file_meta_from_url("https://github.com/devlikeapro/waha/raw/core/examples/waha.jpg")
                .unwrap();
        assert_eq!(m.filename, "waha.jpg");
        assert_eq!(m.mimetype, "image/jpeg");
    }

    #[test]
    fn extensionless_and_encoded() {
        let m = file_meta_from_url("https://api.rucika.co.id/price-list/16/download").unwrap();
        assert_eq!(m.filename, "download");
        assert_eq!(m.mimetype, "application/octet-stream");
        let m = file_meta_from_url("http://x.test/a/price%20list.pdf?x=1").unwrap();
        assert_eq!(m.filename, "price list.pdf");
        assert_eq!(m.mimetype, "application/pdf");
        let m = file_meta_from_url("https://x.test/").unwrap();
        assert_eq!(m.filename, "file");
    }

    #[test]
    fn bad_urls() {
        assert_eq!(
            file_meta_from_url("not a url"),
            Err(FileUrlError::Malformed)
        );
        assert_eq!(
            file_meta_from_url("ftp://x.test/a.jpg"),
            Err(FileUrlError::Scheme)
        );
        assert_eq!(
            file_meta_from_url("file:///etc/passwd"),
            Err(FileUrlError::Scheme)
        );
    }

    #[test]
    fn mimetypes() {
        assert!(is_valid_mimetype("image/png"));
        assert!(is_valid_mimetype("application/vnd.ms-excel"));
        assert!(!is_valid_mimetype("png"));
        assert!(!is_valid_mimetype("image/"));
    }
}
