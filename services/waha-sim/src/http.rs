//! The simulator's HTTP API: WAHA's endpoints under `/api` (recorded, checked against the
//! OpenAPI document, answered as WAHA answers) and its own control endpoints under `/_sim`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use rand::Rng;
use serde_json::{json, Value};

use crate::model::{Engine, Faults, SendKind, SessionStatus};
use crate::sim::{wa_message, PendingSend, Session, Sim};

/// Every request lands here; routing is by method and path segments.
pub(crate) async fn dispatch(
    req: HttpRequest,
    bytes: web::Bytes,
    sim: web::Data<Arc<Sim>>,
) -> HttpResponse {
    let sim: Arc<Sim> = sim.get_ref().clone();
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    let query = req.query_string().to_owned();
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();

    if segs.first() == Some(&"_sim") {
        return control(&sim, &method, &segs[1..], &bytes);
    }

    // Trace context as sent (WAHA ignores it; tests check that a send continues the trace).
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The body, as WAHA's JSON body parser would see it.
    let mut extra = Vec::new();
    let body: Option<Value> = if bytes.is_empty() {
        None
    } else {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            extra.push(
                "a body without Content-Type: application/json (WAHA would not read it)".to_owned(),
            );
        }
        match serde_json::from_slice(&bytes) {
            Ok(value) => Some(value),
            Err(e) => {
                let raw = Value::String(String::from_utf8_lossy(&bytes).into_owned());
                extra.push(format!("body is not JSON: {e}"));
                sim.record_call(
                    &method,
                    &path,
                    &query,
                    Some(&raw),
                    traceparent,
                    extra,
                    false,
                );
                return nest_error(
                    StatusCode::BAD_REQUEST,
                    json!(format!("Unexpected token in JSON: {e}")),
                );
            }
        }
    };
    sim.record_call(
        &method,
        &path,
        &query,
        body.as_ref(),
        traceparent,
        extra,
        true,
    );

    if let Some(expected) = &sim.config.api_key {
        let given = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query_param(&query, "x-api-key"));
        if segs.first() != Some(&"ping") && given.as_deref() != Some(expected.as_str()) {
            return respond(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Unauthorized", "statusCode": 401}),
            );
        }
    }

    let accept_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));

    match (method.as_str(), segs.as_slice()) {
        ("GET", ["ping"]) => respond(StatusCode::OK, json!({"message": "pong"})),
        ("GET", ["api", "sessions"]) => list_sessions(&sim, &query),
        ("POST", ["api", "sessions"]) => create_session(&sim, body),
        ("GET", ["api", "sessions", name]) => get_session(&sim, name),
        ("PUT", ["api", "sessions", name]) => update_session(&sim, name, body),
        ("DELETE", ["api", "sessions", name]) => delete_session(&sim, name),
        ("POST", ["api", "sessions", name, action @ ("start" | "stop" | "restart" | "logout")]) => {
            session_action(&sim, name, action)
        }
        ("GET", ["api", "sessions", name, "me"]) => with_session(&sim, name, |_, s| {
            respond(StatusCode::OK, s.me.clone().unwrap_or(Value::Null))
        }),
        ("POST", ["api", endpoint]) if SendKind::from_endpoint(endpoint).is_some() => {
            match SendKind::from_endpoint(endpoint) {
                Some(kind) => send(sim, kind, body, &path).await,
                None => not_found_route(&method, &path),
            }
        }
        ("POST", ["api", "sendSeen" | "startTyping" | "stopTyping"]) => chat_action(&sim, body),
        ("GET", ["api", "contacts", "check-exists"]) => check_exists(&sim, &query),
        ("GET", ["api", name, "new-message-id"]) => new_message_id(&sim, name),
        ("GET", ["api", name, "chats", chat, "messages"]) => {
            list_messages(&sim, name, chat, &query)
        }
        ("GET", ["api", name, "chats", chat, "messages", id]) => find_message(&sim, name, chat, id),
        ("GET", ["api", name, "auth", "qr"]) => qr(&sim, name, &query, accept_json),
        ("POST", ["api", name, "auth", "request-code"]) => request_code(&sim, name, body),
        ("GET", ["api", name, "profile"]) => working(&sim, name, |_, s| {
            let me = s.me.clone().unwrap_or(Value::Null);
            respond(
                StatusCode::OK,
                json!({"id": me.get("id"), "name": me.get("pushName"), "picture": null}),
            )
        }),
        ("GET", ["api", name, "lids", "pn", phone]) => lid_by_phone(&sim, name, phone),
        ("GET", ["api", name, "lids", lid]) => phone_by_lid(&sim, name, lid),
        _ => not_found_route(&method, &path),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn respond(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("X-Powered-By", "waha-sim"))
        .json(body)
}

/// NestJS's error shape `{statusCode, message, error}`.
fn nest_error(status: StatusCode, message: Value) -> HttpResponse {
    let error = status.canonical_reason().unwrap_or("Error");
    respond(
        status,
        json!({"statusCode": status.as_u16(), "message": message, "error": error}),
    )
}

fn bad_request(messages: &[&str]) -> HttpResponse {
    nest_error(StatusCode::BAD_REQUEST, json!(messages))
}

fn not_found_route(method: &str, path: &str) -> HttpResponse {
    nest_error(
        StatusCode::NOT_FOUND,
        json!(format!("Cannot {method} {path}")),
    )
}

/// What WAHA answers for a session it does not run.
fn session_not_found(name: &str) -> HttpResponse {
    nest_error(
        StatusCode::NOT_FOUND,
        json!(format!(
            "We didn't find a session with name '{name}'.\nPlease start it first by using POST /api/sessions/{name}/start request"
        )),
    )
}

/// WAHA's 422 for a session in the wrong status.
fn not_expected(session: &Session, expected: SessionStatus) -> HttpResponse {
    respond(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "error": "Session status is not as expected. Try again later or restart the session",
            "session": session.name,
            "status": session.status.as_str(),
            "expected": [expected.as_str()],
        }),
    )
}

/// WAHA's 500 for an engine failure.
fn engine_failure(path: &str, engine: Engine, exception: Value) -> HttpResponse {
    let timestamp = chrono_like_now();
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({
            "statusCode": 500,
            "timestamp": timestamp,
            "exception": exception,
            "request": {"path": path, "method": "POST", "query": {}},
            "version": {"version": "2026.7.1", "engine": engine.as_str(), "tier": "CORE", "browser": null},
        }),
    )
}

/// An ISO-8601 UTC timestamp with milliseconds, as NestJS writes them.
fn chrono_like_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// Runs `f` on an existing session, 404 otherwise.
fn with_session(
    sim: &Sim,
    name: &str,
    f: impl FnOnce(&Sim, &mut Session) -> HttpResponse,
) -> HttpResponse {
    let mut state = sim.lock();
    match state.sessions.get_mut(name) {
        Some(session) => f(sim, session),
        None => session_not_found(name),
    }
}

/// Runs `f` on a `WORKING` session: 404 when unknown, 422 otherwise.
fn working(
    sim: &Sim,
    name: &str,
    f: impl FnOnce(&Sim, &mut Session) -> HttpResponse,
) -> HttpResponse {
    with_session(sim, name, |sim, session| {
        if session.status == SessionStatus::Working {
            f(sim, session)
        } else {
            not_expected(session, SessionStatus::Working)
        }
    })
}

fn list_sessions(sim: &Sim, query: &str) -> HttpResponse {
    let all = query_param(query, "all").is_some_and(|v| v == "true" || v == "1");
    let state = sim.lock();
    let list: Vec<Value> = state
        .sessions
        .values()
        .filter(|s| all || s.status != SessionStatus::Stopped)
        .map(Session::info)
        .collect();
    respond(StatusCode::OK, Value::Array(list))
}

fn create_session(sim: &Sim, body: Option<Value>) -> HttpResponse {
    let body = body.unwrap_or_else(|| json!({}));
    let name = match body.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        None | Some(Value::Null) => format!("session_{:016x}", rand::rng().random::<u64>()),
        _ => return bad_request(&["name must be a string"]),
    };
    let start = body.get("start").and_then(Value::as_bool).unwrap_or(true);
    let config = body.get("config").cloned().unwrap_or(Value::Null);
    check_webhook_urls(sim, &config);
    let mut state = sim.lock();
    if state.sessions.contains_key(&name) {
        return nest_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(format!(
                "Session '{name}' already exists. Use PUT to update it."
            )),
        );
    }
    let mut session = Session::new(&name, sim.config.engine, config);
    if start {
        sim.start_session(&mut session);
    }
    let info = session.info();
    state.sessions.insert(name, session);
    respond(StatusCode::CREATED, info)
}

fn get_session(sim: &Sim, name: &str) -> HttpResponse {
    match sim.lock().sessions.get(name) {
        Some(session) => respond(StatusCode::OK, session.info()),
        None => nest_error(StatusCode::NOT_FOUND, json!("Session not found")),
    }
}

fn update_session(sim: &Sim, name: &str, body: Option<Value>) -> HttpResponse {
    let config = body
        .and_then(|b| b.get("config").cloned())
        .unwrap_or(Value::Null);
    check_webhook_urls(sim, &config);
    let mut state = sim.lock();
    let Some(session) = state.sessions.get_mut(name) else {
        return nest_error(StatusCode::NOT_FOUND, json!("Session not found"));
    };
    let running = session.status != SessionStatus::Stopped;
    sim.stop_session(session);
    session.config = config;
    if running {
        sim.start_session(session);
    }
    respond(StatusCode::OK, session.info())
}

fn delete_session(sim: &Sim, name: &str) -> HttpResponse {
    let mut state = sim.lock();
    if let Some(mut session) = state.sessions.remove(name) {
        sim.stop_session(&mut session);
    }
    HttpResponse::Ok().finish()
}

fn session_action(sim: &Sim, name: &str, action: &str) -> HttpResponse {
    let mut state = sim.lock();
    let Some(session) = state.sessions.get_mut(name) else {
        return nest_error(StatusCode::NOT_FOUND, json!("Session not found"));
    };
    match action {
        "start" => sim.start_session(session),
        "stop" => sim.stop_session(session),
        "restart" => {
            sim.stop_session(session);
            sim.start_session(session);
        }
        _ => {
            // logout: forget the account, restart when it was running.
            let running = session.status != SessionStatus::Stopped;
            sim.stop_session(session);
            session.me = None;
            session.pairing_phone = None;
            if running {
                sim.start_session(session);
            }
        }
    }
    respond(StatusCode::CREATED, session.info())
}

/// The simulator posts only to loopback; other webhook URLs are reported once, when configured.
fn check_webhook_urls(sim: &Sim, config: &Value) {
    let urls = config
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| h.get("url").and_then(Value::as_str));
    for url in urls {
        if !crate::webhooks::is_loopback_url(url) {
            sim.violation(format!(
                "webhook URL {url} is not a loopback address: the simulator will not post to it"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sending

async fn send(sim: Arc<Sim>, kind: SendKind, body: Option<Value>, path: &str) -> HttpResponse {
    let Some(body) = body.filter(Value::is_object) else {
        return bad_request(&["the body must be a JSON object"]);
    };
    let session_name = str_field(&body, "session").unwrap_or("default").to_owned();
    let Some(chat_id) = str_field(&body, "chatId")
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
    else {
        return bad_request(&["chatId must be a string"]);
    };
    match kind {
        SendKind::Text if str_field(&body, "text").is_none() => {
            return bad_request(&["text must be a string"])
        }
        SendKind::Text => {}
        _ => {
            let file = body.get("file");
            let usable = file
                .is_some_and(|f| str_field(f, "url").is_some() || str_field(f, "data").is_some());
            if !usable {
                return bad_request(&["file must have a url or data"]);
            }
        }
    }

    let (pending, latency, hang) = {
        let mut state = sim.lock();
        let engine = match state.sessions.get(&session_name) {
            None => return session_not_found(&session_name),
            Some(session) if session.status != SessionStatus::Working => {
                return not_expected(session, SessionStatus::Working)
            }
            Some(session) => session.engine,
        };
        let faults = state.faults.clone();
        if faults.reach_out_timelock && engine == Engine::Gows {
            return engine_failure(
                path,
                engine,
                json!({"message": "2 UNKNOWN: server returned error 463", "code": 2,
                       "details": "server returned error 463", "name": "Error"}),
            );
        }
        let roll = faults.error_rate > 0.0 && state.fault_rng.random::<f64>() < faults.error_rate;
        if roll {
            return engine_failure(
                path,
                engine,
                json!({"message": "waha-sim: injected engine failure", "name": "Error"}),
            );
        }
        let pre_generated = (kind == SendKind::Text && engine != Engine::Webjs)
            .then(|| {
                str_field(&body, "id")
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
            })
            .flatten();
        let bare = pre_generated.unwrap_or_else(Sim::new_message_id);
        let pending = PendingSend {
            session: session_name,
            engine,
            chat_id,
            bare,
            kind,
            body,
            timelock_ack: faults.reach_out_timelock && engine == Engine::Noweb,
        };
        (pending, faults.latency, faults.hang)
    };

    // The send's work runs on its own, like WAHA's: it completes (and is recorded) even when
    // the client hangs up or is never answered.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let worker = sim.clone();
    sim.rt.spawn(async move {
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let _ = tx.send(worker.complete_send(pending));
    });
    if hang {
        std::future::pending::<()>().await;
    }
    match rx.await {
        Ok(response) => respond(StatusCode::CREATED, response),
        Err(_) => engine_failure(
            path,
            Engine::Gows,
            json!({"message": "waha-sim: send task lost"}),
        ),
    }
}

/// `sendSeen`, `startTyping`, `stopTyping`: need a `WORKING` session, answer 201 empty.
fn chat_action(sim: &Sim, body: Option<Value>) -> HttpResponse {
    let Some(body) = body.filter(Value::is_object) else {
        return bad_request(&["the body must be a JSON object"]);
    };
    if str_field(&body, "chatId").is_none() {
        return bad_request(&["chatId must be a string"]);
    }
    let name = str_field(&body, "session").unwrap_or("default").to_owned();
    working(sim, &name, |_, _| HttpResponse::Created().finish())
}

fn new_message_id(sim: &Sim, name: &str) -> HttpResponse {
    working(sim, name, |_, session| {
        if session.engine == Engine::Webjs {
            return nest_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!("The method is not implemented by 'WEBJS' engine. Check the docs and try another engine: https://waha.devlike.pro/"),
            );
        }
        respond(StatusCode::OK, json!({"id": Sim::new_message_id()}))
    })
}

fn me_id(session: &Session) -> String {
    session
        .me
        .as_ref()
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn find_message(sim: &Sim, name: &str, chat: &str, id: &str) -> HttpResponse {
    working(sim, name, |_, session| {
        match session.find_message(chat, id) {
            Some(message) => respond(StatusCode::OK, wa_message(message, &me_id(session))),
            None => nest_error(StatusCode::NOT_FOUND, json!("Message not found")),
        }
    })
}

fn list_messages(sim: &Sim, name: &str, chat: &str, query: &str) -> HttpResponse {
    let limit = query_param(query, "limit").and_then(|l| l.parse::<usize>().ok());
    let Some(limit) = limit else {
        return bad_request(&["limit must be a number"]);
    };
    let from_me = query_param(query, "filter.fromMe");
    let since = query_param(query, "filter.timestamp.gte").and_then(|t| t.parse::<u64>().ok());
    working(sim, name, |_, session| {
        let me = me_id(session);
        let list: Vec<Value> = session
            .messages
            .iter()
            .rev()
            .filter(|m| m.chat_id == chat)
            .filter(|_| from_me.as_deref() != Some("false")) // the simulator only knows sent messages
            .filter(|m| since.is_none_or(|s| m.timestamp >= s))
            .take(limit)
            .map(|m| wa_message(m, &me))
            .collect();
        respond(StatusCode::OK, Value::Array(list))
    })
}

// ---------------------------------------------------------------------------------------------
// Login, profile, contacts

fn qr(sim: &Sim, name: &str, query: &str, accept_json: bool) -> HttpResponse {
    let format = query_param(query, "format").unwrap_or_else(|| "image".to_owned());
    with_session(sim, name, |_, session| {
        let (SessionStatus::ScanQrCode, Some(value)) = (session.status, session.qr.clone()) else {
            return not_expected(session, SessionStatus::ScanQrCode);
        };
        if format == "raw" {
            return respond(StatusCode::OK, json!({"value": value}));
        }
        let png = crate::png::qr_png(&value);
        if accept_json {
            let data = base64::engine::general_purpose::STANDARD.encode(&png);
            return respond(
                StatusCode::OK,
                json!({"mimetype": "image/png", "data": data}),
            );
        }
        HttpResponse::Ok().content_type("image/png").body(png)
    })
}

fn request_code(sim: &Sim, name: &str, body: Option<Value>) -> HttpResponse {
    let phone = body
        .as_ref()
        .and_then(|b| str_field(b, "phoneNumber"))
        .map(str::to_owned);
    let Some(phone) = phone.filter(|p| p.chars().any(|c| c.is_ascii_digit())) else {
        return bad_request(&["phoneNumber must be a string"]);
    };
    with_session(sim, name, |_, session| {
        if session.status != SessionStatus::ScanQrCode {
            return not_expected(session, SessionStatus::ScanQrCode);
        }
        session.pairing_phone = Some(phone.chars().filter(char::is_ascii_digit).collect());
        let mut rng = rand::rng();
        let letters: String = (0..8)
            .map(|_| char::from(b"ABCDEFGHJKLMNPQRSTVWXYZ23456789"[rng.random_range(0..31)]))
            .collect();
        respond(
            StatusCode::CREATED,
            json!({"code": format!("{}-{}", &letters[..4], &letters[4..])}),
        )
    })
}

fn check_exists(sim: &Sim, query: &str) -> HttpResponse {
    let Some(phone) = query_param(query, "phone") else {
        return bad_request(&["phone must be a string"]);
    };
    let name = query_param(query, "session").unwrap_or_else(|| "default".to_owned());
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let exists = (8..=15).contains(&digits.len()) && !sim.lock_unregistered_contains(&digits);
    working(sim, &name, |_, _| {
        if exists {
            respond(
                StatusCode::OK,
                json!({"numberExists": true, "chatId": format!("{digits}@c.us")}),
            )
        } else {
            respond(StatusCode::OK, json!({"numberExists": false}))
        }
    })
}

fn phone_by_lid(sim: &Sim, name: &str, lid: &str) -> HttpResponse {
    let lid = if lid.contains('@') {
        lid.to_owned()
    } else {
        format!("{lid}@lid")
    };
    let pn = sim.lid_lookup(&lid);
    working(sim, name, |_, _| {
        respond(StatusCode::OK, json!({"lid": lid, "pn": pn}))
    })
}

fn lid_by_phone(sim: &Sim, name: &str, phone: &str) -> HttpResponse {
    let digits: String = phone
        .split('@')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let pn = format!("{digits}@c.us");
    let lid = sim.pn_lookup(&pn);
    working(sim, name, |_, _| {
        respond(StatusCode::OK, json!({"lid": lid, "pn": pn}))
    })
}

// ---------------------------------------------------------------------------------------------
// Control API (`/_sim/...`): not WAHA's, not recorded, no API key.

fn control(sim: &Arc<Sim>, method: &str, segs: &[&str], bytes: &[u8]) -> HttpResponse {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let to_json = |v: serde_json::Result<Value>| match v {
        Ok(v) => respond(StatusCode::OK, v),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": e.to_string()}),
        ),
    };
    match (method, segs) {
        ("GET", [] | [""]) => respond(
            StatusCode::OK,
            json!({"simulator": "waha-sim", "endpoints": [
                "GET /_sim/calls", "GET /_sim/sends", "GET /_sim/violations", "GET /_sim/webhooks",
                "POST /_sim/sessions {name, engine?, status}", "POST /_sim/sessions/{name}/login",
                "PUT /_sim/faults {latency_ms, error_rate, hang, reach_out_timelock, seed}",
                "POST /_sim/sessions/{name}/messages {from, body, participant?, fromMe?, media?}",
                "POST /_sim/lids {lid, pn}", "POST /_sim/unregistered {phone}", "POST /_sim/reset"]}),
        ),
        ("GET", ["calls"]) => to_json(serde_json::to_value(&sim.lock().calls)),
        ("GET", ["sends"]) => to_json(serde_json::to_value(&sim.lock().sends)),
        ("GET", ["violations"]) => to_json(serde_json::to_value(&sim.lock().violations)),
        ("GET", ["webhooks"]) => to_json(serde_json::to_value(&sim.lock().deliveries)),
        ("POST", ["sessions"]) => {
            let name = str_field(&body, "name").unwrap_or("default").to_owned();
            let engine = match str_field(&body, "engine").map(str::parse::<Engine>) {
                None => sim.config.engine,
                Some(Ok(engine)) => engine,
                Some(Err(e)) => {
                    return respond(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}))
                }
            };
            let status = match str_field(&body, "status")
                .unwrap_or("WORKING")
                .parse::<SessionStatus>()
            {
                Ok(status) => status,
                Err(e) => return respond(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
            };
            sim.ensure_session(&name, engine, status);
            get_session(sim, &name)
        }
        ("POST", ["sessions", name, "login"]) => {
            if sim.login(name) {
                get_session(sim, name)
            } else {
                respond(
                    StatusCode::CONFLICT,
                    json!({"error": "the session is not waiting in SCAN_QR_CODE"}),
                )
            }
        }
        ("POST", ["sessions", name, "messages"]) => {
            match serde_json::from_value::<crate::model::Incoming>(body) {
                Ok(incoming) => match sim.receive(name, &incoming) {
                    Some(payload) => respond(StatusCode::OK, payload),
                    None => respond(
                        StatusCode::CONFLICT,
                        json!({"error": "the session does not exist or is not WORKING"}),
                    ),
                },
                Err(e) => respond(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
            }
        }
        ("PUT", ["faults"]) => match serde_json::from_value::<Faults>(body) {
            Ok(faults) => {
                sim.set_faults(faults.clone());
                respond(
                    StatusCode::OK,
                    serde_json::to_value(faults).unwrap_or(Value::Null),
                )
            }
            Err(e) => respond(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
        },
        ("POST", ["lids"]) => match (str_field(&body, "lid"), str_field(&body, "pn")) {
            (Some(lid), Some(pn)) => {
                sim.add_lid(lid, pn);
                respond(StatusCode::OK, json!({"lid": lid, "pn": pn}))
            }
            _ => respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "lid and pn are required"}),
            ),
        },
        ("POST", ["unregistered"]) => match str_field(&body, "phone") {
            Some(phone) => {
                sim.set_registered(phone, false);
                respond(
                    StatusCode::OK,
                    json!({"phone": phone, "numberExists": false}),
                )
            }
            None => respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "phone is required"}),
            ),
        },
        ("POST", ["reset"]) => {
            sim.reset_records();
            respond(StatusCode::OK, json!({"reset": true}))
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            json!({"error": "no such simulator control endpoint"}),
        ),
    }
}

/// Small conveniences on the state used by the handlers above and by `SimHandle`.
impl Sim {
    fn lock_unregistered_contains(&self, digits: &str) -> bool {
        self.lock().unregistered.contains(digits)
    }

    fn lid_lookup(&self, lid: &str) -> Option<String> {
        self.lock().lids.get(lid).cloned()
    }

    fn pn_lookup(&self, pn: &str) -> Option<String> {
        self.lock()
            .lids
            .iter()
            .find(|(_, p)| p.as_str() == pn)
            .map(|(l, _)| l.clone())
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        let mut state = self.lock();
        state.fault_rng = rand::SeedableRng::seed_from_u64(faults.seed);
        state.faults = faults;
    }

    pub(crate) fn add_lid(&self, lid: &str, pn: &str) {
        let lid = if lid.contains('@') {
            lid.to_owned()
        } else {
            format!("{lid}@lid")
        };
        let pn = if pn.contains('@') {
            pn.to_owned()
        } else {
            format!("{pn}@c.us")
        };
        self.lock().lids.insert(lid, pn);
    }

    pub(crate) fn set_registered(&self, phone: &str, registered: bool) {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let mut state = self.lock();
        if registered {
            state.unregistered.remove(&digits);
        } else {
            state.unregistered.insert(digits);
        }
    }

    pub(crate) fn reset_records(&self) {
        let mut state = self.lock();
        state.calls.clear();
        state.sends.clear();
        state.violations.clear();
        state.deliveries.clear();
    }
}

/// A generous body limit: base64 media can be large.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// How long the server waits for in-flight requests when stopped.
pub(crate) const SHUTDOWN: Duration = Duration::from_secs(1);
