//! Phone number normalisation: every number Wapim stores is international digits without `+`.

use phonenumber::{country, Mode};
use thiserror::Error;

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    /// The configured default region is not an ISO 3166 alpha-2 code libphonenumber knows.
    #[error("unknown phone region `{0}`")]
    UnknownRegion(String),
    /// The input is not a valid phone number in the default region nor internationally.
    #[error("the phone number is not valid")]
    Invalid,
}

/// Turns what people type (`0811…`, `811…`, `+62 811-…`, `62811…`) into `62811…`.
///
/// Backed by libphonenumber's metadata (the `phonenumber` crate) so that validity follows the
/// numbering plans rather than a hand-written regex; the default region decides how national
/// numbers (without a country code) are read.
#[derive(Debug, Clone, Copy)]
pub struct PhoneNormalizer {
    region: country::Id,
}

impl PhoneNormalizer {
    /// Builds a normaliser for a default region such as `ID`.
    pub fn new(region: &str) -> Result<Self, PhoneError> {
        let region = region
            .trim()
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map_err(|_| PhoneError::UnknownRegion(region.to_owned()))?;
        Ok(Self { region })
    }

    /// Normalises one number to international digits without `+`, or says it is invalid.
    pub fn normalize(&self, input: &str) -> Result<String, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > 32 {
            return Err(PhoneError::Invalid);
        }
        // Keep digits and a leading plus; separators people type are dropped, anything else
        // (letters, `@c.us` suffixes) makes the number invalid rather than silently truncated.
        let mut compact = String::with_capacity(trimmed.len());
        for (i, ch) in trimmed.chars().enumerate() {
            match ch {
                '0'..='9' => compact.push(ch),
                '+' if i == 0 => compact.push('+'),
                ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
                _ => return Err(PhoneError::Invalid),
            }
        }
        if let Some(rest) = compact.strip_prefix("00") {
            compact = format!("+{rest}");
        }
        let candidates: Vec<(Option<country::Id>, String)> = if compact.starts_with('+') {
            vec![(None, compact)]
        } else {
            vec![
                (Some(self.region), compact.clone()),
                (None, format!("+{compact}")),
            ]
        };
        for (region, text) in candidates {
            if let Ok(number) = phonenumber::parse(region, &text) {
                if phonenumber::is_valid(&number) {
                    let e164 = number.format().mode(Mode::E164).to_string();
                    return Ok(e164.trim_start_matches('+').to_owned());
                }
            }
        }
        Err(PhoneError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> PhoneNormalizer {
        PhoneNormalizer::new("ID").unwrap()
    }

    #[test]
    fn national_forms_become_international_digits() {
        for input in [
            "0811010010010",
            "811010010010",
            "+62 811-0100-10010",
            "62811010010010",
            "0062811010010010",
            "(0811) 010 010 010",
        ] {
            assert_eq!(id().normalize(input).unwrap(), "62811010010010", "{input}");
        }
    }

    #[test]
    fn other_countries_keep_their_code() {
        assert_eq!(id().normalize("+44 20 7946 0958").unwrap(), "442079460958");
        let us = PhoneNormalizer::new("us").unwrap();
        assert_eq!(us.normalize("(201) 555-0123").unwrap(), "12015550123");
    }

    #[test]
    fn garbage_is_invalid() {
        for input in [
            "",
            "abc",
            "12",
            "0811-ABC",
            "62811010010010@c.us",
            "+",
            "0000000000",
        ] {
            assert_eq!(id().normalize(input), Err(PhoneError::Invalid), "{input}");
        }
    }

    #[test]
    fn unknown_region_is_refused() {
        assert!(PhoneNormalizer::new("XX").is_err());
    }
}
