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

/// A page request: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: i64,
    /// Rows per page.
    pub size: i64,
}

impl Page {
    /// Rows to skip.
    pub fn offset(&self) -> i64 {
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
