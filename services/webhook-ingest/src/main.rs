//! The `webhook-ingest` binary: load settings, prepare the database, serve WAHA's webhooks.

use std::net::TcpListener;
use std::process::ExitCode;

use wapim_settings::Settings;
use wapim_webhook_ingest::Application;

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("webhook-ingest: {e}");
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
        "wapim-webhook-ingest",
        Some(&settings.telemetry.otlp_endpoint),
    ) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("webhook-ingest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let address = format!("{}:{}", settings.http.host, settings.http.port);
    let listener = match TcpListener::bind(&address) {
        Ok(l) => l,
        Err(e) => {
            return fail(format_args!(
                "cannot listen on {address} (WAPIM_HTTP__HOST/WAPIM_HTTP__PORT): {e}"
            ))
        }
    };
    let db = match wapim_web::db::prepare(&settings.database).await {
        Ok(db) => db,
        Err(e) => return fail(format_args!("database: {e}")),
    };
    let app = match Application::build(&settings, db, listener) {
        Ok(app) => app,
        Err(e) => return fail(e),
    };
    tracing::info!(%address, "webhook ingest listening at /api/v1/waha-webhook");
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
