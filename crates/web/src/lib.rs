//! Shared actix-web glue, so every Wapim service (gateway, webhook ingest, the dispatcher's
//! health port, the single binary) answers the same way without copying code: the error type and
//! its envelope, the JSON body reader, 404/405 and health handlers, bounded blocking database
//! access, and the server bootstrap.

pub mod body;
pub mod db;
pub mod envelope;
pub mod error;
pub mod health;
pub mod server;

pub use db::Db;
pub use error::ApiError;

/// Answers routes that exist with a method they do not take.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Answers paths that do not exist.
pub async fn route_not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
