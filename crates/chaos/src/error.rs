//! The crate's error type.

/// What can go wrong reading or writing a history.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A history line is not a valid entry.
    #[error("history line {line}: {message}")]
    Parse {
        /// The 1-based line number.
        line: usize,
        /// What the parser reported.
        message: String,
    },
    /// An entry could not be encoded.
    #[error("cannot encode a history entry: {message}")]
    Encode {
        /// What the encoder reported.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
