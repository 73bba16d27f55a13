//! The HTTP side: one `reqwest` client per WAHA instance, the API key on every request, and
//! every answer turned into a typed value or a classified [`WahaError`].

use std::time::Duration;

use reqwest::{header, Method};
use serde_json::Value;
use url::Url;

use crate::error::is_session_not_found;
use crate::{redact_secrets, AccountCall, ChatAction, SendRequest, Sent, WahaError};

/// A WAHA session's state as Wapim needs it: is it `WORKING`, and on which engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's name (Wapim's device session id).
    pub name: String,
    /// `STOPPED`, `STARTING`, `SCAN_QR_CODE`, `WORKING`, `FAILED`, or a newer status kept as
    /// WAHA spelled it.
    pub status: String,
    /// `GOWS`, `NOWEB`, `WEBJS`, … when WAHA says (as a string or as `{"engine": …}`).
    pub engine: Option<String>,
}

/// A client for one WAHA instance; cheap to clone (clones share the connection pool).
#[derive(Debug, Clone)]
pub struct WahaClient {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
}

impl WahaClient {
    /// Builds a client for the WAHA at `base_url` (e.g. `http://127.0.0.1:3000`), sending
    /// `X-Api-Key` when `api_key` is set and giving up on any call after `timeout`.
    /// A WAHA on a loopback address is never reached through a proxy.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, WahaError> {
        let invalid =
            |why: String| WahaError::Connect(format!("invalid WAHA base URL {base_url:?}: {why}"));
        let mut base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("no host".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }

        let mut headers = header::HeaderMap::new();
        if let Some(key) = api_key {
            let mut value = header::HeaderValue::from_str(&key)
                .map_err(|_| invalid("the API key is not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert("X-Api-Key", value);
        }
        headers.insert(
            header::ACCEPT,
            header::HeaderValue::from_static("application/json"),
        );

        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would replay the API key elsewhere; WAHA never redirects its API.
            .redirect(reqwest::redirect::Policy::none());
        if is_loopback(&base) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            http,
            base,
            timeout,
        })
    }

    /// How long a call waits for WAHA's answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks WAHA for a fresh message id (`GET /api/{session}/new-message-id`, NOWEB and GOWS;
    /// WEBJS answers 422 → [`WahaError::Rejected`]). Store it before sending with it.
    pub async fn new_message_id(&self, session: &str) -> Result<String, WahaError> {
        let url = self.url(&["api", session, "new-message-id"]);
        let body = self.call(Method::GET, url, None).await?;
        body.get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| WahaError::InvalidResponse(format!("new-message-id without id: {body}")))
    }

    /// Sends one message (`POST /api/sendText|sendImage|sendFile|sendVideo|sendVoice`) and reads
    /// its ids from the engine's answer.
    pub async fn send(&self, session: &str, request: &SendRequest) -> Result<Sent, WahaError> {
        let url = self.url(&["api", request.endpoint()]);
        let body = self
            .call(Method::POST, url, Some(request.body(session)))
            .await?;
        Sent::from_response(body)
    }

    /// Looks a message up (`GET /api/{session}/chats/{chatId}/messages/{messageId}`; the full
    /// serialized id works on every engine, the bare id on NOWEB/GOWS). `Ok(None)` when WAHA
    /// does not know the message; a 404 about the session itself is
    /// [`WahaError::SessionNotFound`].
    pub async fn find_message(
        &self,
        session: &str,
        chat_id: &str,
        message_id: &str,
    ) -> Result<Option<Value>, WahaError> {
        let mut url = self.url(&["api", session, "chats", chat_id, "messages", message_id]);
        // Media are not needed to know whether the message exists.
        url.query_pairs_mut().append_pair("downloadMedia", "false");
        match self.call(Method::GET, url, None).await {
            Ok(message) => Ok(Some(message)),
            Err(WahaError::SessionNotFound { body }) if !is_session_not_found(&body) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The session's status and engine (`GET /api/sessions/{session}`); `None` when WAHA has
    /// no such session.
    pub async fn session(&self, session: &str) -> Result<Option<SessionInfo>, WahaError> {
        let url = self.url(&["api", "sessions", session]);
        let body = match self.call(Method::GET, url, None).await {
            Ok(body) => body,
            Err(WahaError::SessionNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        parse_session_info(&body).map(Some)
    }

    /// The account behind a session (`GET /api/sessions/{session}/me`): `id`, `pushName` and, on
    /// newer builds, `reachoutTimelock {isActive, timeEnforcementEnds, enforcementType}`. `None`
    /// when WAHA has no such session or it is not logged in.
    pub async fn me(&self, session: &str) -> Result<Option<Value>, WahaError> {
        let url = self.url(&["api", "sessions", session, "me"]);
        match self.call(Method::GET, url, None).await {
            Ok(Value::Null) | Err(WahaError::SessionNotFound { .. }) => Ok(None),
            Ok(me) => Ok(Some(me)),
            Err(e) => Err(e),
        }
    }

    /// The phone behind a hidden-number id (`GET /api/{session}/lids/{lid}` → `{lid, pn}`):
    /// the digits of `pn`, or `None` when WhatsApp does not tell (`pn` null, unknown lid).
    pub async fn phone_of_lid(
        &self,
        session: &str,
        lid: &str,
    ) -> Result<Option<String>, WahaError> {
        let url = self.url(&["api", session, "lids", lid]);
        let body = match self.call(Method::GET, url, None).await {
            Ok(body) => body,
            Err(WahaError::SessionNotFound { body }) if !is_session_not_found(&body) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        Ok(body
            .get("pn")
            .and_then(Value::as_str)
            .and_then(|pn| pn.split('@').next())
            .map(|digits| digits.split(':').next().unwrap_or(digits))
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned))
    }

    /// A human-like touch on a chat before a send: `POST /api/sendSeen`, `/api/startTyping` or
    /// `/api/stopTyping`.
    pub async fn chat_action(
        &self,
        session: &str,
        chat_id: &str,
        action: ChatAction,
    ) -> Result<(), WahaError> {
        let url = self.url(&["api", action.endpoint()]);
        let body = serde_json::json!({ "session": session, "chatId": chat_id });
        self.call(Method::POST, url, Some(body)).await.map(|_| ())
    }

    /// A session as WAHA shows it (`GET /api/sessions/{session}`: `name`, `status`, `config`, …);
    /// `None` when WAHA has no such session.
    pub async fn session_details(&self, session: &str) -> Result<Option<Value>, WahaError> {
        let url = self.url(&["api", "sessions", session]);
        match self.call(Method::GET, url, None).await {
            Ok(body) => Ok(Some(body)),
            Err(WahaError::SessionNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates and starts a session (`POST /api/sessions` with `name`, `start: true`, `config`).
    pub async fn create_session(&self, session: &str, config: &Value) -> Result<Value, WahaError> {
        let url = self.url(&["api", "sessions"]);
        let body = serde_json::json!({ "name": session, "start": true, "config": config });
        self.call(Method::POST, url, Some(body)).await
    }

    /// Replaces a session's configuration (`PUT /api/sessions/{session}`; WAHA restarts a
    /// running session to apply it).
    pub async fn update_session(&self, session: &str, config: &Value) -> Result<Value, WahaError> {
        let url = self.url(&["api", "sessions", session]);
        let body = serde_json::json!({ "config": config });
        self.call(Method::PUT, url, Some(body)).await
    }

    /// Starts (`true`) or stops (`false`) a session (`POST /api/sessions/{session}/start|stop`;
    /// stopping keeps its login).
    pub async fn set_session_running(
        &self,
        session: &str,
        running: bool,
    ) -> Result<Value, WahaError> {
        let action = if running { "start" } else { "stop" };
        let url = self.url(&["api", "sessions", session, action]);
        self.call(Method::POST, url, None).await
    }

    /// The names of every session WAHA has, stopped ones included (`GET /api/sessions?all=true`).
    pub async fn session_names(&self) -> Result<Vec<String>, WahaError> {
        let mut url = self.url(&["api", "sessions"]);
        url.query_pairs_mut().append_pair("all", "true");
        let body = self.call(Method::GET, url, None).await?;
        Ok(body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// One of WAHA's account functions for `session`, its JSON answer passed through (secrets
    /// removed, see [`crate::redact_secrets`]).
    pub async fn account(&self, session: &str, call: &AccountCall) -> Result<Value, WahaError> {
        let (method, mut url, body) = match call {
            AccountCall::Me => (
                Method::GET,
                self.url(&["api", "sessions", session, "me"]),
                None,
            ),
            AccountCall::Profile => (Method::GET, self.url(&["api", session, "profile"]), None),
            AccountCall::Restart => (
                Method::POST,
                self.url(&["api", "sessions", session, "restart"]),
                None,
            ),
            AccountCall::Logout => (
                Method::POST,
                self.url(&["api", "sessions", session, "logout"]),
                None,
            ),
            AccountCall::QrValue => (Method::GET, self.url(&["api", session, "auth", "qr"]), None),
            AccountCall::RequestCode { phone } => (
                Method::POST,
                self.url(&["api", session, "auth", "request-code"]),
                Some(serde_json::json!({ "phoneNumber": phone })),
            ),
            AccountCall::CheckExists { .. } => (
                Method::GET,
                self.url(&["api", "contacts", "check-exists"]),
                None,
            ),
        };
        match call {
            AccountCall::QrValue => {
                url.query_pairs_mut().append_pair("format", "raw");
            }
            AccountCall::CheckExists { phone } => {
                url.query_pairs_mut()
                    .append_pair("phone", phone)
                    .append_pair("session", session);
            }
            _ => {}
        }
        let mut answer = self.call(method, url, body).await?;
        redact_secrets(&mut answer);
        Ok(answer)
    }

    /// The session's pairing QR code as a PNG (`GET /api/{session}/auth/qr?format=image`).
    pub async fn qr_png(&self, session: &str) -> Result<Vec<u8>, WahaError> {
        let mut url = self.url(&["api", session, "auth", "qr"]);
        url.query_pairs_mut().append_pair("format", "image");
        let mut request = self.http.get(url).header(header::ACCEPT, "image/png");
        if let Some(trace) = wapim_telemetry::TraceContext::current() {
            request = request.header(wapim_telemetry::TRACEPARENT, trace.traceparent());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let body = parse_body(&bytes)
            .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Err(WahaError::from_status(status.as_u16(), body))
    }

    /// `base` joined with percent-encoded path segments.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One request: JSON in, JSON out, non-2xx classified; carries the current `traceparent`.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Value, WahaError> {
        let started = std::time::Instant::now();
        let outcome = self.call_once(method, url, body).await;
        let label = match &outcome {
            Ok(_) => "ok",
            Err(WahaError::Timeout) => "timeout",
            Err(WahaError::Connect(_)) => "unreachable",
            Err(WahaError::Server { .. } | WahaError::ReachOutTimelock { .. }) => "server_error",
            Err(WahaError::InvalidResponse(_)) => "invalid_response",
            Err(_) => "client_error",
        };
        wapim_metrics::metrics()
            .waha_duration
            .with_label_values(&[label])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    async fn call_once(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Value, WahaError> {
        let mut request = self.http.request(method, url);
        // The call joins the trace of whatever asked for it (the job's, for a send).
        if let Some(trace) = wapim_telemetry::TraceContext::current() {
            request = request.header(wapim_telemetry::TRACEPARENT, trace.traceparent());
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        let parsed = parse_body(&bytes);
        if status.is_success() {
            return match parsed {
                Some(value) => Ok(value),
                None => Err(WahaError::InvalidResponse(format!(
                    "{status} with a body that is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                ))),
            };
        }
        let body =
            parsed.unwrap_or_else(|| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status.is_client_error() || status.is_server_error() {
            return Err(WahaError::from_status(status.as_u16(), body));
        }
        Err(WahaError::InvalidResponse(format!(
            "unexpected status {status}: {body}"
        )))
    }
}

fn parse_body(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// Transport failures: timeouts apart, everything means "no usable answer".
fn transport(e: reqwest::Error) -> WahaError {
    if e.is_timeout() {
        WahaError::Timeout
    } else {
        // Without the URL (it is Wapim's own configuration) but with the causes.
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        WahaError::Connect(message)
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Reads `GET /api/sessions/{session}`'s body.
pub(crate) fn parse_session_info(body: &Value) -> Result<SessionInfo, WahaError> {
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let (Some(name), Some(status)) = (text("name"), text("status")) else {
        return Err(WahaError::InvalidResponse(format!(
            "session without name or status: {body}"
        )));
    };
    let engine = match body.get("engine") {
        Some(Value::String(engine)) => Some(engine.clone()),
        Some(Value::Object(engine)) => engine
            .get("engine")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    Ok(SessionInfo {
        name,
        status,
        engine,
    })
}
