//! Data bundles: test plans and data files shipped to every replica under `/atq/data`.

/// What can go wrong with a data bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// No bundle of this id is stored on the engine.
    #[error("data bundle '{id}' not found: push it with `atq data push PATH`, or check `atq data ls`")]
    NotFound {
        /// The id asked for.
        id: String,
    },
}

/// A set of files, identified by a hash of their content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBundle {
    id: String,
}

impl DataBundle {
    /// The bundle's id: the same content always has the same id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}
