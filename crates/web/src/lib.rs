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

/// Turns the settings into the handlers' validation context, naming the bad variable if any.
pub fn validation_context(
    settings: &wapim_settings::Settings,
) -> Result<wapim_domain::ValidationContext, wapim_settings::SettingsError> {
    let timezone = settings.timezone.parse::<wapim_domain::Tz>().map_err(|_| {
        wapim_settings::SettingsError::Invalid {
            var: "WAPIM_TIMEZONE",
            reason: format!(
                "`{}` is not an IANA time zone such as Asia/Jakarta",
                settings.timezone
            ),
        }
    })?;
    let phones =
        wapim_domain::PhoneNormalizer::new(&settings.phone.default_region).map_err(|_| {
            wapim_settings::SettingsError::Invalid {
                var: "WAPIM_PHONE__DEFAULT_REGION",
                reason: format!(
                    "`{}` is not an ISO 3166 region such as ID",
                    settings.phone.default_region
                ),
            }
        })?;
    Ok(wapim_domain::ValidationContext { phones, timezone })
}
