//! Starting an actix server the same way everywhere: on a listener the caller bound (port 0 in
//! tests), with request tracing, and the worker count from settings.

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, HttpServer};

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
    let mut server =
        HttpServer::new(move || factory().wrap(tracing_actix_web::TracingLogger::default()))
            .listen(listener)?;
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.run())
}
