//! The integrator's webhooks, as [Standard Webhooks](https://www.standardwebhooks.com/) define
//! them: the per-device secret (`whsec_<base64>`), the signature headers, and one delivery
//! attempt over HTTP behind an SSRF guard. What to deliver and when to retry is the store's and
//! the dispatcher's business; this crate only knows how one attempt is made and signed.
//!
//! A receiver verifies a delivery like this: take the bytes after `whsec_` of its secret,
//! base64-decode them (the key), compute HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`
//! (the raw body, exactly as received), base64-encode it and compare it, in constant time, with
//! each space-separated `v1,<signature>` of `webhook-signature`; refuse timestamps more than a
//! few minutes from its clock (replays), and deduplicate on `webhook-id` (retries repeat it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Header: the delivery's id, the same on every attempt (receivers deduplicate on it).
pub const HEADER_ID: &str = "webhook-id";
/// Header: when this attempt was signed, in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header: `v1,<base64 HMAC-SHA256>` of `id.timestamp.body`.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The most of a receiver's answer kept with an attempt.
pub const MAX_RESPONSE_BYTES: usize = 1024;

/// A fresh secret: `whsec_` and 32 random bytes in base64.
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// A secret that is not `whsec_<base64>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is whsec_ followed by base64")]
pub struct BadSecret;

fn key_of(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    match BASE64.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(BadSecret),
    }
}

/// The `webhook-signature` value of `body` sent as `id` at `timestamp` (Unix seconds).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_of(secret)?).map_err(|_| BadSecret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// Whether one of the space-separated signatures of `header` is `body`'s under `secret`
/// (constant-time comparison). The check a receiver makes; Wapim's tests use it too.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(key) = key_of(secret) else {
        return false;
    };
    header.split(' ').any(|candidate| {
        let Some(given) = candidate.strip_prefix("v1,") else {
            return false;
        };
        let Ok(given) = BASE64.decode(given) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return false;
        };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    })
}

/// Whether `ip` is somewhere a webhook must not reach unless private targets are allowed:
/// loopback, private (RFC 1918, unique-local), link-local (which holds the cloud metadata
/// service, 169.254.169.254), carrier-grade NAT (100.64/10, e.g. Alibaba's metadata), unspecified,
/// broadcast, multicast, documentation and benchmark ranges, and IPv4 written as IPv6.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 (embeds IPv4)
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Resolves names and drops forbidden addresses; a name with none left fails to resolve, so the
/// connection can only go to an address that was checked (no DNS rebinding between a check and
/// the connect).
struct GuardedResolver;

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to loopback, private, link-local or metadata addresses (set WAPIM_WEBHOOKS__ALLOW_PRIVATE=true to allow them)")]
struct ForbiddenTarget(String);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_forbidden_ip(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(ForbiddenTarget(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// One attempt's request.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The integrator's URL.
    pub url: &'a str,
    /// `webhook-id`.
    pub webhook_id: &'a str,
    /// The device's `whsec_…` secret.
    pub secret: &'a str,
    /// The JSON body.
    pub body: &'a str,
    /// Unix seconds of this attempt (`webhook-timestamp`).
    pub timestamp: i64,
}

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why it did not succeed (no answer, refused target, non-2xx).
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_body: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

impl Attempt {
    /// A 2xx answer: delivered.
    pub fn delivered(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }

    /// Whether trying again can help. Receivers fix their endpoints, so every failure (4xx
    /// included) is retried until the delivery's deadline; only a target Wapim refuses (not
    /// http(s), or a forbidden address) is final.
    pub fn retryable(&self) -> bool {
        !self
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with(REFUSED))
    }
}

const REFUSED: &str = "refused:";

/// Makes delivery attempts; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

/// The sender could not be built.
#[derive(Debug, thiserror::Error)]
#[error("webhook client: {0}")]
pub struct ClientError(String);

impl WebhookSender {
    /// A sender whose attempts last at most `timeout`; `allow_private` lifts the SSRF guard.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Wapim-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            client: builder.build().map_err(|e| ClientError(e.to_string()))?,
            allow_private,
        })
    }

    /// Makes one attempt: POSTs the signed body and reports what came back. Never fails: every
    /// outcome is an [`Attempt`] to record.
    pub async fn attempt(&self, delivery: &Delivery<'_>) -> Attempt {
        let started = Instant::now();
        let refused = |why: String| Attempt {
            status_code: None,
            error: Some(format!("{REFUSED} {why}")),
            response_body: None,
            duration: started.elapsed(),
        };
        let url = match url::Url::parse(delivery.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return refused(format!("{} is not an http(s) URL", delivery.url)),
        };
        if !self.allow_private {
            // Literal addresses never reach the resolver: check them here.
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(is_forbidden_ip) || url.host_str() == Some("localhost") {
                return refused(format!(
                    "{} is a loopback, private, link-local or metadata address (set WAPIM_WEBHOOKS__ALLOW_PRIVATE=true to allow it)",
                    url.host_str().unwrap_or_default()
                ));
            }
        }
        let signature = match sign(
            delivery.secret,
            delivery.webhook_id,
            delivery.timestamp,
            delivery.body.as_bytes(),
        ) {
            Ok(s) => s,
            Err(e) => return refused(e.to_string()),
        };
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(HEADER_ID, delivery.webhook_id)
            .header(HEADER_TIMESTAMP, delivery.timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(delivery.body.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.ok().map(|b| {
                    let end = b.len().min(MAX_RESPONSE_BYTES);
                    String::from_utf8_lossy(&b[..end]).into_owned()
                });
                Attempt {
                    status_code: Some(status),
                    error: (!(200..300).contains(&status))
                        .then(|| format!("the receiver answered {status}")),
                    response_body: body,
                    duration: started.elapsed(),
                }
            }
            Err(e) => {
                let forbidden = std::error::Error::source(&e)
                    .into_iter()
                    .chain(std::iter::successors(std::error::Error::source(&e), |s| {
                        s.source()
                    }))
                    .find_map(|s| s.downcast_ref::<ForbiddenTarget>().map(|f| f.to_string()));
                match forbidden {
                    Some(why) => refused(why),
                    None => Attempt {
                        status_code: None,
                        error: Some(describe(&e)),
                        response_body: None,
                        duration: started.elapsed(),
                    },
                }
            }
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the receiver did not answer in time".to_owned()
    } else if e.is_connect() {
        format!("could not connect: {e}")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, id, 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            secret,
            id,
            1614265330,
            body,
            &format!("v1,bogus {signature}")
        ));
        assert!(!verify(secret, id, 1614265331, body, &signature));
        assert!(!verify("whsec_AAAA", id, 1614265330, body, &signature));
    }

    #[test]
    fn generated_secrets_have_their_form() {
        let secret = generate_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        assert_eq!(key_of(&secret).unwrap().len(), 32);
        assert_ne!(generate_secret(), secret);
    }

    #[test]
    fn private_and_metadata_addresses_are_forbidden_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.100.100.200",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(
                is_forbidden_ip(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1"] {
            assert!(
                !is_forbidden_ip(ip.parse().unwrap()),
                "{ip} should be allowed"
            );
        }
    }

    #[tokio::test]
    async fn loopback_targets_are_refused_without_a_request_unless_allowed() {
        let guarded = WebhookSender::new(Duration::from_secs(2), false).unwrap();
        let delivery = Delivery {
            url: "http://127.0.0.1:9/hook",
            webhook_id: "msg_x",
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            body: "{}",
            timestamp: 1,
        };
        let attempt = guarded.attempt(&delivery).await;
        assert_eq!(attempt.status_code, None);
        assert!(!attempt.retryable(), "{attempt:?}");
        let named = guarded
            .attempt(&Delivery {
                url: "http://localhost:9/hook",
                ..delivery.clone()
            })
            .await;
        assert!(!named.retryable(), "{named:?}");
        // Allowed, the same target is tried (nothing listens on port 9: a connect error).
        let open = WebhookSender::new(Duration::from_secs(2), true).unwrap();
        let tried = open.attempt(&delivery).await;
        assert!(tried.retryable(), "{tried:?}");
    }
}
