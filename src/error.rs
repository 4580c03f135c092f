//! The one error type of the crate.

/// Every fallible call in slimgemm returns this error. Messages say what was wrong and what
/// was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes of an op's operands disagree, or a size is zero or absurd.
    #[error("{op}: shape error: {msg}")]
    Shape {
        /// The op or constructor that rejected its input.
        op: &'static str,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// An operand has the wrong element type.
    #[error("{op}: dtype error: {msg}")]
    DType {
        /// The op that rejected its input.
        op: &'static str,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// A compressed format's contents are invalid (non-monotone indptr, index out of range, ...).
    #[error("invalid {format}: {msg}")]
    Format {
        /// The format (e.g. `CSR`, `GPTQ`).
        format: &'static str,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// A file could not be parsed.
    #[error("parse error in {source_name}: {msg}")]
    Parse {
        /// File name or description of the input.
        source_name: String,
        /// What was wrong and where.
        msg: String,
    },
    /// A backend is not compiled in or not present on this machine.
    #[error("{backend} backend unavailable: {reason}")]
    Unavailable {
        /// `cuda`, `wgpu` or `cpu`.
        backend: &'static str,
        /// Why it is absent.
        reason: String,
    },
    /// A backend call failed (driver error, compile error, validation error of the GPU API).
    #[error("{backend} backend error: {msg}")]
    Backend {
        /// `cuda`, `wgpu` or `cpu`.
        backend: &'static str,
        /// What failed.
        msg: String,
    },
    /// A buffer passed to one backend belongs to another.
    #[error("{op}: operand `{operand}` belongs to another device (a {found} device) than the {expected} device running the op; upload it to this device first")]
    WrongDevice {
        /// The op.
        op: &'static str,
        /// The operand's name.
        operand: &'static str,
        /// Backend of the operand.
        found: &'static str,
        /// Backend that runs the op.
        expected: &'static str,
    },
    /// The backend does not implement this op (or this variant of it).
    #[error("{op}: not supported: {msg}")]
    Unsupported {
        /// The op (or what was asked for).
        op: &'static str,
        /// What is missing and what would work instead.
        msg: String,
    },
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The variant's name (`"Shape"`, `"Format"`, ...), for tests and logs.
    pub fn variant(&self) -> &'static str {
        match self {
            Error::Shape { .. } => "Shape",
            Error::DType { .. } => "DType",
            Error::Format { .. } => "Format",
            Error::Parse { .. } => "Parse",
            Error::Unavailable { .. } => "Unavailable",
            Error::Backend { .. } => "Backend",
            Error::WrongDevice { .. } => "WrongDevice",
            Error::Unsupported { .. } => "Unsupported",
            Error::Io(_) => "Io",
        }
    }
    /// [`Error::Unsupported`] for an op a backend does not implement.
    pub fn unsupported(backend: crate::BackendKind, op: crate::Op) -> Self {
        Error::Unsupported { op: op.name(), msg: format!("the {} backend does not implement it", backend.name()) }
    }
    /// Shorthand for [`Error::Shape`].
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
    /// Shorthand for [`Error::DType`].
    pub fn dtype(op: &'static str, msg: impl Into<String>) -> Self {
        Error::DType { op, msg: msg.into() }
    }
    /// Shorthand for [`Error::Format`].
    pub fn format(format: &'static str, msg: impl Into<String>) -> Self {
        Error::Format { format, msg: msg.into() }
    }
    /// Shorthand for [`Error::Parse`].
    pub fn parse(source_name: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Parse { source_name: source_name.into(), msg: msg.into() }
    }
    /// Shorthand for [`Error::Backend`].
    pub fn backend(backend: &'static str, msg: impl Into<String>) -> Self {
        Error::Backend { backend, msg: msg.into() }
    }
    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(backend: &'static str, reason: impl Into<String>) -> Self {
        Error::Unavailable { backend, reason: reason.into() }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
