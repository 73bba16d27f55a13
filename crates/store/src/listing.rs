//! Pagination and soft-delete visibility shared by every list query.

/// Which rows a list shows with respect to soft deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trashed {
    /// Only live rows (the default).
    #[default]
    Without,
    /// Live and deleted rows (`trashed=with`).
    With,
    /// Only deleted rows (`trashed=only`).
    Only,
}

/// The deepest OFFSET a list may ask for: deeper pages cost the database a scan of every row
/// before them, so past this a client pages with `after_id` (keyset) instead.
pub const MAX_OFFSET: i64 = 10_000;

/// A page request: 1-based page number and page size, or a keyset cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: i64,
    /// Rows per page.
    pub size: i64,
    /// Keyset cursor: rows after this id in the sort's direction (id sorts only); the page
    /// number is then ignored.
    pub after_id: Option<i64>,
}

impl Page {
    /// Page `number` (from 1) of `size` rows, by offset.
    pub fn numbered(number: i64, size: i64) -> Self {
        Page {
            number,
            size,
            after_id: None,
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        if self.after_id.is_some() {
            return 0;
        }
        (self.number.max(1) - 1).saturating_mul(self.size)
    }
}

/// One page of rows and the total across all pages.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    /// The rows of this page.
    pub rows: Vec<T>,
    /// Rows matching the filter across every page.
    pub total: i64,
}

/// A whitelisted sort: column and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort<C> {
    /// The column.
    pub column: C,
    /// Descending when true.
    pub descending: bool,
}
