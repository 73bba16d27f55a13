//! The `gateway` binary: load settings, bind, serve.

use std::net::TcpListener;
use std::process::ExitCode;

use wapim_gateway::Application;
use wapim_settings::Settings;

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match wapim_telemetry::init_service(
        &settings.log.level,
        settings.log.format == "json",
        "wapim-gateway",
        Some(&settings.telemetry.otlp_endpoint),
    ) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("migrate") => {
            return match wapim_gateway::prepare_database(&settings.database).await {
                Ok(_) => {
                    println!("gateway: migrations are up to date");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gateway: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(other) => {
            eprintln!(
                "gateway: unknown command `{other}`; use `gateway` (serve) or `gateway migrate`"
            );
            return ExitCode::FAILURE;
        }
    }
    let address = format!("{}:{}", settings.http.host, settings.http.port);
    let listener = match TcpListener::bind(&address) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "gateway: cannot listen on {address} (WAPIM_HTTP__HOST/WAPIM_HTTP__PORT): {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    let db = match wapim_gateway::prepare_database(&settings.database).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let broker = wapim_broker::BrokerConfig {
        url: settings.amqp.url.clone(),
        prefix: settings.amqp.prefix.clone(),
        prefetch: 1,
        delivery_limit: settings.amqp.delivery_limit,
    };
    // The dashboard's queues page reaches RabbitMQ's dead letters on its own connection, made
    // when first needed (the in-process queue belongs to `wapim`, not to this service).
    let dead_letters = (!broker.url.starts_with("memory:")).then(|| {
        std::sync::Arc::new(wapim_gateway::dead_letters::DeadLetters::on_demand(
            broker.clone(),
        ))
    });
    if settings.relay.enabled {
        let relay = wapim_app::relay::RelayConfig {
            batch: settings.relay.batch,
            poll: std::time::Duration::from_millis(settings.relay.poll_ms),
            lease: std::time::Duration::from_secs(settings.relay.lease_secs),
        };
        tokio::spawn(wapim_app::relay::connect_and_run(
            db.pool().clone(),
            broker,
            relay,
        ));
    }
    let options = wapim_gateway::GatewayOptions {
        dead_letters,
        ..wapim_gateway::GatewayOptions::default()
    };
    let app = match Application::build_with(&settings, db, listener, options) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%address, port = app.port(), "gateway listening");
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
