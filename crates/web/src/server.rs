//! Starting an actix server the same way everywhere: on a listener the caller bound (port 0 in
//! tests), with request tracing, request metrics, and the worker count from settings.

use std::net::TcpListener;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{App, Error, HttpServer};

/// Counts and times each request by its route pattern (`/api/messages/{id}`; `unmatched` for
/// paths no route knows, so probes of random paths cannot grow the label set).
async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let response = next.call(req).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = match method.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method,
        _ => "other".to_owned(),
    };
    let m = wapim_metrics::metrics();
    m.http_requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Serves the app `factory` builds on `listener` with `workers` threads (0: one per core),
/// wrapping it in request tracing.
pub fn serve<F, T, B>(listener: TcpListener, workers: usize, factory: F) -> std::io::Result<Server>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let mut server = HttpServer::new(move || {
        factory()
            .wrap(from_fn(record))
            .wrap(tracing_actix_web::TracingLogger::default())
    })
    .listen(listener)?;
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.run())
}
