//! List requests: `page`, `per_page`, `sort`, `trashed` and filters from the query string, and
//! the `meta` block (`links`, `total`, `current_page`, `per_page`, `last_page`).

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use serde::Serialize;
use wapim_domain::ValidationErrors;
use wapim_store::listing::{Sort, MAX_OFFSET};
use wapim_store::{Page, Trashed};
use wapim_web::ApiError;

/// Where list links point: `public_url` when set; otherwise the request's own host, and its
/// `Forwarded`/`X-Forwarded-*` headers only when the gateway is told it runs behind a proxy that
/// sets them (else any client could make the links point at a host of its choosing).
#[derive(Debug, Clone, Default)]
pub struct LinkBase {
    /// `WAPIM_HTTP__PUBLIC_URL`, without a trailing slash.
    pub public_url: Option<String>,
    /// `WAPIM_HTTP__TRUST_FORWARDED`.
    pub trust_forwarded: bool,
}

impl LinkBase {
    /// `scheme://host` for links in the answer to `req`.
    pub fn of(&self, req: &HttpRequest) -> String {
        if let Some(base) = &self.public_url {
            return base.trim_end_matches('/').to_owned();
        }
        if self.trust_forwarded {
            let info = req.connection_info();
            return format!("{}://{}", info.scheme(), info.host());
        }
        let scheme = if req.app_config().secure() {
            "https"
        } else {
            "http"
        };
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(actix_web::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or_else(|| req.app_config().host().to_owned());
        format!("{scheme}://{host}")
    }
}

/// Rows per page unless `per_page` says otherwise.
pub const DEFAULT_PER_PAGE: i64 = 15;
/// Most rows one page may hold.
pub const MAX_PER_PAGE: i64 = 100;
/// With more pages than this, `links` shows the first, the last and a window around the current.
const MAX_LINKS: i64 = 10;

/// The parsed query string of a list request.
pub struct ListQuery {
    params: BTreeMap<String, String>,
    /// Page requested.
    pub page: Page,
    /// Soft-delete visibility.
    pub trashed: Trashed,
    /// The `sort` value as given (or the default), echoed in links.
    pub sort_text: String,
    /// Problems found so far (the caller adds filter problems, then calls `finish`).
    pub errors: ValidationErrors,
}

impl ListQuery {
    /// Parses the common parameters; unknown parameters are ignored.
    pub fn parse(req: &HttpRequest) -> Self {
        let mut params = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            params.insert(k.into_owned(), v.into_owned());
        }
        let mut errors = ValidationErrors::new();
        // PostgreSQL text cannot hold NUL: refuse it here rather than fail in the query.
        params.retain(|key, value| {
            let clean = !value.contains('\0') && !key.contains('\0');
            if !clean {
                errors.add(
                    key.replace('\0', ""),
                    "The value may not contain NUL characters.",
                );
            }
            clean
        });
        let number = positive(&params, "page", 1, i64::from(i32::MAX), &mut errors);
        let size = positive(
            &params,
            "per_page",
            DEFAULT_PER_PAGE,
            MAX_PER_PAGE,
            &mut errors,
        );
        let after_id = params
            .contains_key("after_id")
            .then(|| positive(&params, "after_id", 1, i64::MAX, &mut errors));
        if after_id.is_none() && (number - 1).saturating_mul(size) > MAX_OFFSET {
            errors.add(
                "page",
                format!(
                    "Pages deeper than {MAX_OFFSET} rows are not served; page with after_id=<the last id you have> and sort=id DESC (or ASC) instead."
                ),
            );
        }
        let trashed = match params.get("trashed").map(String::as_str) {
            None | Some("") => Trashed::Without,
            Some("with") => Trashed::With,
            Some("only") => Trashed::Only,
            Some(_) => {
                errors.add("trashed", "The trashed must be `with` or `only`.");
                Trashed::Without
            }
        };
        let sort_text = params
            .get("sort")
            .filter(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| "id DESC".to_owned());
        Self {
            params,
            page: Page {
                number,
                size,
                after_id,
            },
            trashed,
            sort_text,
            errors,
        }
    }

    /// A filter's raw value, if given and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// A filter naming a record by id (`device_id=7`): a positive integer, else a field error.
    pub fn id(&mut self, key: &str) -> Option<i64> {
        match self.get(key).map(str::parse::<i64>) {
            None => None,
            Some(Ok(id)) if id > 0 => Some(id),
            Some(_) => {
                self.errors.add(
                    key,
                    format!("The {} must be a positive integer.", key.replace('_', " ")),
                );
                None
            }
        }
    }

    /// Resolves `sort` against a whitelist of columns (`"id DESC"`, `"created_at asc"`).
    pub fn sort<C: Copy>(&mut self, columns: &[(&str, C)], default: C) -> Sort<C> {
        let mut words = self.sort_text.split_whitespace();
        let column = words.next().unwrap_or("id");
        let direction = words.next().unwrap_or("asc");
        let column = columns
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, c)| *c);
        let descending = match direction.to_ascii_lowercase().as_str() {
            "asc" => Some(false),
            "desc" => Some(true),
            _ => None,
        };
        if self.page.after_id.is_some() && self.sort_text.split_whitespace().next() != Some("id") {
            self.errors.add(
                "after_id",
                "The after_id cursor pages only a list sorted by id.",
            );
        }
        match (column, descending, words.next()) {
            (Some(column), Some(descending), None) => Sort { column, descending },
            _ => {
                let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                self.errors.add(
                    "sort",
                    format!(
                        "The sort must be a column and ASC or DESC, e.g. `id DESC`; columns: {}.",
                        names.join(", ")
                    ),
                );
                Sort {
                    column: default,
                    descending: true,
                }
            }
        }
    }

    /// Fails with 422 if any parameter was bad.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(std::mem::take(&mut self.errors)))
        }
    }

    /// The `meta` block for a page of a list at `path` with `total` rows. Links are page
    /// numbers (an `after_id` cursor is not carried into them).
    pub fn meta(&self, req: &HttpRequest, links: &LinkBase, total: i64) -> Meta {
        let per_page = self.page.size;
        let last_page = ((total + per_page - 1) / per_page).max(1);
        let current = self.page.number;
        let base = links.of(req);
        let path = req.path();
        // Query: sort first (as the reference), the other parameters, page last.
        let mut fixed = format!("sort={}", encode(&self.sort_text));
        for (k, v) in &self.params {
            if !matches!(k.as_str(), "sort" | "page" | "after_id") {
                fixed.push('&');
                fixed.push_str(&encode(k));
                fixed.push('=');
                fixed.push_str(&encode(v));
            }
        }
        let pages: Vec<i64> = if last_page <= MAX_LINKS {
            (1..=last_page).collect()
        } else {
            let mut pages = vec![1];
            pages.extend((current - 2).max(2)..=(current + 2).min(last_page - 1));
            pages.push(last_page);
            pages
        };
        let links = pages
            .into_iter()
            .map(|p| format!("{base}{path}?{fixed}&page={p}"))
            .collect();
        Meta {
            links,
            total,
            current_page: current,
            per_page,
            last_page,
        }
    }
}

fn positive(
    params: &BTreeMap<String, String>,
    key: &str,
    default: i64,
    max: i64,
    errors: &mut ValidationErrors,
) -> i64 {
    match params.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.add(
                    key,
                    format!(
                        "The {} must be an integer between 1 and {max}.",
                        key.replace('_', " ")
                    ),
                );
                default
            }
        },
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (space → `%20`, as the
/// reference's links show).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `meta` of a list response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Meta {
    /// URLs of the pages (all of them up to ten pages; otherwise first, last and nearby).
    pub links: Vec<String>,
    /// Rows matching across all pages.
    pub total: i64,
    /// The page shown.
    pub current_page: i64,
    /// Page size.
    pub per_page: i64,
    /// Number of the last page (1 for an empty list).
    pub last_page: i64,
}

/// The `data` of a list response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListData<T> {
    /// This page's records.
    pub list: Vec<T>,
    /// Paging information.
    pub meta: Meta,
}
