//! The WAHA servers devices are placed on. A WAHA session lives on the server that paired it and
//! one server holds a bounded number of sessions, so every device belongs to one server and
//! every WAHA call of the device goes there.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{devices, waha_servers};
use crate::{conflict_on, DbConn, StoreError};

/// A registered WAHA server.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = waha_servers)]
pub struct WahaServerRow {
    /// Row id.
    pub id: i64,
    /// Operators' name for it (unique).
    pub name: String,
    /// Its base URL (unique).
    pub base_url: String,
    /// Sent as `X-Api-Key` (never shown by the API).
    pub api_key: Option<String>,
    /// How many live devices it may hold.
    pub capacity: i64,
    /// `active` (takes new devices), `draining` (keeps its devices, takes no new ones) or
    /// `down` (takes none; its devices' calls still go to it: their sessions live there).
    pub state: String,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
}

/// The writable fields of a server.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = waha_servers, treat_none_as_null = true)]
pub struct WahaServerFields {
    /// See [`WahaServerRow::name`].
    pub name: String,
    /// See [`WahaServerRow::base_url`].
    pub base_url: String,
    /// See [`WahaServerRow::api_key`].
    pub api_key: Option<String>,
    /// See [`WahaServerRow::capacity`].
    pub capacity: i64,
    /// See [`WahaServerRow::state`].
    pub state: String,
}

/// A server with how many live devices it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLoad {
    /// The server.
    pub server: WahaServerRow,
    /// Its live devices.
    pub devices: i64,
}

impl ServerLoad {
    /// Places left.
    pub fn room(&self) -> i64 {
        self.server.capacity - self.devices
    }
}

/// Every server with its load, by id.
pub fn list(conn: &mut DbConn) -> Result<Vec<ServerLoad>, StoreError> {
    let servers: Vec<WahaServerRow> = waha_servers::table
        .order(waha_servers::id.asc())
        .select(WahaServerRow::as_select())
        .load(conn)?;
    let counts: Vec<(Option<i64>, i64)> = devices::table
        .filter(devices::deleted_at.is_null())
        .filter(devices::waha_server_id.is_not_null())
        .group_by(devices::waha_server_id)
        .select((devices::waha_server_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(servers
        .into_iter()
        .map(|server| {
            let devices = counts
                .iter()
                .find(|(id, _)| *id == Some(server.id))
                .map_or(0, |(_, n)| *n);
            ServerLoad { server, devices }
        })
        .collect())
}

/// One server.
pub fn find(conn: &mut DbConn, id: i64) -> Result<WahaServerRow, StoreError> {
    waha_servers::table
        .find(id)
        .select(WahaServerRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Registers a server; another with the same name or URL is a `Conflict`.
pub fn insert(
    conn: &mut DbConn,
    fields: &WahaServerFields,
    now: NaiveDateTime,
) -> Result<WahaServerRow, StoreError> {
    diesel::insert_into(waha_servers::table)
        .values((
            fields,
            waha_servers::created_at.eq(now),
            waha_servers::updated_at.eq(now),
        ))
        .returning(waha_servers::all_columns)
        .get_result(conn)
        .map_err(conflict_on("base_url"))
}

/// Changes a server's fields.
pub fn update(
    conn: &mut DbConn,
    id: i64,
    fields: &WahaServerFields,
    now: NaiveDateTime,
) -> Result<WahaServerRow, StoreError> {
    diesel::update(waha_servers::table.find(id))
        .set((fields, waha_servers::updated_at.eq(now)))
        .returning(waha_servers::all_columns)
        .get_result(conn)
        .optional()
        .map_err(conflict_on("base_url"))?
        .ok_or(StoreError::NotFound)
}

/// Removes a server no device (live or deleted) belongs to; `Conflict("id")` otherwise (a
/// deleted device may be restored, and its session lives there).
pub fn delete(conn: &mut DbConn, id: i64) -> Result<(), StoreError> {
    let used: i64 = devices::table
        .filter(devices::waha_server_id.eq(id))
        .count()
        .get_result(conn)?;
    if used > 0 {
        return Err(StoreError::Conflict("id"));
    }
    match diesel::delete(waha_servers::table.find(id)).execute(conn)? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// The server with `fields.base_url`; else the one named `fields.name`, moved to that URL and key
/// (the operator changed `WAPIM_WAHA__URL`: the same WAHA at a new address); else `fields`
/// registered. Start-up of every service, so the server of `WAPIM_WAHA__URL` is always there.
pub fn ensure(
    conn: &mut DbConn,
    fields: &WahaServerFields,
    now: NaiveDateTime,
) -> Result<WahaServerRow, StoreError> {
    let by = |conn: &mut DbConn, url: Option<&str>, name: Option<&str>| {
        let mut q = waha_servers::table
            .select(WahaServerRow::as_select())
            .into_boxed();
        if let Some(url) = url {
            q = q.filter(waha_servers::base_url.eq(url.to_owned()));
        }
        if let Some(name) = name {
            q = q.filter(waha_servers::name.eq(name.to_owned()));
        }
        q.first(conn).optional()
    };
    if let Some(row) = by(conn, Some(&fields.base_url), None)? {
        return Ok(row);
    }
    if let Some(row) = by(conn, None, Some(&fields.name))? {
        let moved = WahaServerFields {
            name: row.name.clone(),
            base_url: fields.base_url.clone(),
            api_key: fields.api_key.clone(),
            capacity: row.capacity,
            state: row.state.clone(),
        };
        return update(conn, row.id, &moved, now);
    }
    match insert(conn, fields, now) {
        // Another process registered it meanwhile.
        Err(StoreError::Conflict(_)) => {
            by(conn, Some(&fields.base_url), None)?.ok_or(StoreError::Conflict("base_url"))
        }
        other => other,
    }
}

/// The active server with the most room (ties: the oldest); `None` when no active server has
/// room.
pub fn most_room(conn: &mut DbConn) -> Result<Option<WahaServerRow>, StoreError> {
    Ok(list(conn)?
        .into_iter()
        .filter(|l| l.server.state == "active" && l.room() > 0)
        .max_by_key(|l| (l.room(), -l.server.id))
        .map(|l| l.server))
}

/// The server a device's WAHA calls go to (`None`: the device has none yet).
pub fn of_device(conn: &mut DbConn, device_id: i64) -> Result<Option<WahaServerRow>, StoreError> {
    Ok(devices::table
        .inner_join(waha_servers::table)
        .filter(devices::id.eq(device_id))
        .select(WahaServerRow::as_select())
        .first(conn)
        .optional()?)
}

/// The server id of the device with `session_id` (`None`: no such device, or it has none).
pub fn of_session(conn: &mut DbConn, session_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(devices::table
        .filter(devices::session_id.eq(session_id))
        .order(devices::id.desc())
        .select(devices::waha_server_id)
        .first::<Option<i64>>(conn)
        .optional()?
        .flatten())
}
