//! The client core's errors, and MCollective's exit codes mapped from them and from outcomes in
//! one place.

/// MCollective's exit codes, as every fleet command ends.
pub mod exit {
    /// Every discovered node answered OK.
    pub const OK: i32 = 0;
    /// Nothing matched the filter.
    pub const NOTHING_DISCOVERED: i32 = 1;
    /// Some nodes failed or gave no reply.
    pub const SOME_FAILED: i32 = 2;
    /// Nodes were discovered but none replied.
    pub const NO_REPLIES: i32 = 3;
    /// Nothing was sent: bad input, no key, no hub.
    pub const NOTHING_SENT: i32 = 4;
}

/// What went wrong before or while talking to the fleet.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request is not valid for its agent's DDL; nothing was sent.
    #[error(transparent)]
    Invalid(#[from] fleet_ddl::ValidationError),
    /// A DDL that does not load.
    #[error(transparent)]
    Ddl(#[from] fleet_ddl::DdlError),
    /// Bad input from the user (an unknown agent, a malformed target, a bad filter).
    #[error("{0}")]
    Input(String),
    /// A missing or unreadable key or configuration.
    #[error("{0}")]
    Config(String),
    /// No hub of the list could be reached, or the link handshake failed.
    #[error("{0}")]
    NoHub(String),
    /// Registry discovery was asked where no registry runs (a NATS cluster without
    /// `noded registry`); broadcast discovery still works.
    #[error("{0}")]
    NoRegistry(String),
    /// The hub refused something or went away.
    #[error("{0}")]
    Hub(String),
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl ClientError {
    /// The exit code a command ends with when this error stops it.
    pub fn exit_code(&self) -> i32 {
        exit::NOTHING_SENT
    }

    /// True when the error was found before anything was sent.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, ClientError::Invalid(_) | ClientError::Ddl(_) | ClientError::Input(_) | ClientError::Config(_))
    }

    pub fn input(msg: impl Into<String>) -> ClientError {
        ClientError::Input(msg.into())
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> ClientError {
        ClientError::Io { what: what.into(), source }
    }
}

impl From<fleet_protocol::FilterError> for ClientError {
    fn from(e: fleet_protocol::FilterError) -> Self {
        ClientError::Input(e.to_string())
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;
