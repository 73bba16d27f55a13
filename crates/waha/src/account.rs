//! WAHA's account functions as Wapim's API passes them through (the reference's
//! `/api/v1/waha/...` endpoints): which call, and how its answer is cleaned of secrets.

use serde_json::Value;

/// One pass-through call to WAHA about a session's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCall {
    /// `GET /api/sessions/{session}/me`: the logged-in account.
    Me,
    /// `GET /api/{session}/profile`: display name and picture.
    Profile,
    /// `POST /api/sessions/{session}/restart`.
    Restart,
    /// `POST /api/sessions/{session}/logout`.
    Logout,
    /// `GET /api/{session}/auth/qr?format=raw`: the QR's value as JSON.
    QrValue,
    /// `POST /api/{session}/auth/request-code`: a pairing code for `phone` (international
    /// digits).
    RequestCode {
        /// The phone to pair.
        phone: String,
    },
    /// `GET /api/contacts/check-exists?phone=…&session=…`: whether `phone` is on WhatsApp.
    CheckExists {
        /// International digits.
        phone: String,
    },
}

/// Removes what a caller of Wapim must never see from a WAHA answer: each webhook's HMAC key
/// and custom headers (they may carry credentials), a proxy's password, and any field named like
/// an API key, secret, password or token. Structure and everything else stay as WAHA sent them.
pub fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let k = key.to_ascii_lowercase().replace(['-', '_'], "");
                let secret = k == "hmac"
                    || k == "customheaders"
                    || ["apikey", "password", "secret", "token"]
                        .iter()
                        .any(|s| k.ends_with(s));
                if secret {
                    *v = Value::Null;
                } else {
                    redact_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_removed_and_the_rest_is_kept() {
        let mut session = json!({
            "name": "wapi-test",
            "config": {
                "proxy": {"server": "10.0.0.1:3128", "username": "u", "password": "p"},
                "webhooks": [{"url": "http://127.0.0.1:9/hook", "hmac": {"key": "k"},
                              "customHeaders": [{"name": "X-Api-Key", "value": "v"}]}],
                "apiKey": "a", "client_secret": "s", "accessToken": "t",
                "noweb": {"store": {"enabled": true}}
            }
        });
        redact_secrets(&mut session);
        let c = &session["config"];
        assert_eq!(c["proxy"]["password"], Value::Null);
        assert_eq!(c["proxy"]["server"], "10.0.0.1:3128");
        assert_eq!(c["webhooks"][0]["hmac"], Value::Null);
        assert_eq!(c["webhooks"][0]["customHeaders"], Value::Null);
        assert_eq!(c["webhooks"][0]["url"], "http://127.0.0.1:9/hook");
        for key in ["apiKey", "client_secret", "accessToken"] {
            assert_eq!(c[key], Value::Null, "{key}");
        }
        assert_eq!(c["noweb"]["store"]["enabled"], true);
        assert_eq!(session["name"], "wapi-test");
    }
}
