//! The `dispatcher` binary: load settings, connect the database, the broker and WAHA, serve
//! `/health/live` and `/health/ready` on `WAPIM_HTTP__PORT`, and consume send jobs.
//! `dispatcher replay-dlq [max]` moves dead-lettered jobs back to the send queue;
//! `dispatcher dlq-count` prints how many wait there.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{web, App};
use wapim_broker::{Broker, BrokerConfig};
use wapim_dispatcher::{Dispatcher, SessionSettings};
use wapim_settings::Settings;
use wapim_waha::WahaClient;

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("dispatcher: {e}");
    ExitCode::FAILURE
}

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let _telemetry = match wapim_telemetry::init_service(
        &settings.log.level,
        settings.log.format == "json",
        "wapim-dispatcher",
        Some(&settings.telemetry.otlp_endpoint),
    ) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("dispatcher: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timezone: wapim_domain::Tz = match settings.timezone.parse() {
        Ok(tz) => tz,
        Err(_) => {
            return fail(format_args!(
                "WAPIM_TIMEZONE: {:?} is not an IANA time zone",
                settings.timezone
            ))
        }
    };
    let pool = match wapim_web::db::prepare(&settings.database).await {
        Ok(db) => db.pool().clone(),
        Err(e) => return fail(format_args!("database: {e}")),
    };
    let broker = match Broker::connect(&BrokerConfig {
        url: settings.amqp.url.clone(),
        prefix: settings.amqp.prefix.clone(),
        prefetch: settings.dispatcher.prefetch,
        delivery_limit: settings.amqp.delivery_limit,
    })
    .await
    {
        Ok(b) => b,
        Err(e) => return fail(format_args!("broker (WAPIM_AMQP__URL): {e}")),
    };
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("replay-dlq") => {
            let max = std::env::args()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            return match broker.replay_dead_letters(max).await {
                Ok(n) => {
                    println!("dispatcher: {n} dead-lettered jobs moved back to the send queue");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        Some("dlq-count") => {
            return match broker.dead_letter_count().await {
                Ok(n) => {
                    println!("{n}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        Some(other) => {
            return fail(format_args!(
                "unknown command `{other}`; use `dispatcher` (serve), `dispatcher replay-dlq [max]` or `dispatcher dlq-count`"
            ))
        }
    }
    let api_key = Some(settings.waha.api_key.clone()).filter(|k| !k.is_empty());
    let waha = match WahaClient::new(
        &settings.waha.url,
        api_key,
        Duration::from_secs(settings.waha.timeout_secs),
    ) {
        Ok(w) => w,
        Err(e) => return fail(format_args!("WAHA (WAPIM_WAHA__URL): {e}")),
    };
    let address = format!("{}:{}", settings.http.host, settings.http.port);
    let listener = match TcpListener::bind(&address) {
        Ok(l) => l,
        Err(e) => return fail(format_args!("cannot listen on {address}: {e}")),
    };
    let health_db = web::Data::new(wapim_web::Db::new(
        pool.clone(),
        settings.database.max_queued_requests,
    ));
    let broker_health = web::Data::new(wapim_web::health::BrokerHealth(broker.clone()));
    let server = match wapim_web::server::serve(listener, 1, move || {
        App::new()
            .app_data(health_db.clone())
            .app_data(broker_health.clone())
            .configure(wapim_web::health::routes)
            .default_service(web::to(wapim_web::route_not_found))
    }) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let dispatcher = Dispatcher::new(
        pool,
        broker,
        waha,
        settings.dispatcher.clone(),
        &settings.pacing,
        SessionSettings {
            webhook_url: settings.waha.webhook_url.clone(),
        },
    )
    .with_timezone(timezone);
    let dispatcher = match dispatcher.with_webhooks(&settings.webhooks) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    // Whatever drifted on WAHA while no dispatcher ran is repaired.
    let resync = dispatcher.clone();
    tokio::spawn(async move {
        if let Err(e) = resync.resync_all().await {
            tracing::warn!(error = %e, "start-up resync of WAHA sessions failed");
        }
    });
    let tag = format!("dispatcher-{}", std::process::id());
    tracing::info!(%address, "dispatcher consuming send jobs");
    // actix stops the health server on SIGTERM/SIGINT: that is the signal to drain.
    let (stopped_tx, stopped) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
    tokio::spawn(async move {
        let _ = stopped_tx.send(server.await);
    });
    let grace = Duration::from_secs(settings.dispatcher.shutdown_grace_secs);
    let served = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = served.clone();
    let stop = async move {
        let outcome = stopped.await.unwrap_or(Ok(()));
        if let Ok(mut slot) = record.lock() {
            *slot = Some(outcome);
        }
    };
    let drained = dispatcher.run_until(&tag, stop, grace).await;
    tracing::info!(drained, "dispatcher stopped");
    let outcome = served.lock().ok().and_then(|mut s| s.take());
    match outcome {
        Some(Err(e)) => fail(e),
        _ => ExitCode::SUCCESS,
    }
}
