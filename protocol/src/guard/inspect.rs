//! Reading a ZMTP 3.x stream as it passes: the greeting, then each frame header, checked against
//! the guard's limits before any of the frame's body is forwarded.

use super::{DEFAULT_MAX_COMMAND, DEFAULT_MAX_PARTS};

pub(crate) const GREETING_LEN: u8 = 64;
pub(crate) const FLAG_MORE: u8 = 0b001;
pub(crate) const FLAG_LONG: u8 = 0b010;
pub(crate) const FLAG_COMMAND: u8 = 0b100;

/// What the guard lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardLimits {
    /// Largest message frame, and largest total of the frames of one multi-part message, that
    /// may reach the ROUTER. A claim over it costs the client its link.
    pub max_frame: u64,
    /// Largest command frame.
    pub max_command: u64,
    /// Most parts in one multi-part message.
    pub max_parts: u32,
}

impl GuardLimits {
    /// The guard for a hub whose codec accepts frames of up to `max_frame` bytes.
    ///
    /// The guard's own ceiling is twice that. A frame a little over the codec limit (a reply that
    /// grew too big) still reaches the hub, which drops and counts it and keeps the peer's link, as
    /// it always has; a claim beyond twice the limit is no honest mistake, and the link goes. So
    /// zmq.rs never holds more than `2 * max_frame` (plus one read chunk) for a connection.
    pub fn for_max_frame(max_frame: usize) -> GuardLimits {
        GuardLimits { max_frame: (max_frame as u64).saturating_mul(2), max_command: DEFAULT_MAX_COMMAND, max_parts: DEFAULT_MAX_PARTS }
    }
}

impl Default for GuardLimits {
    fn default() -> Self {
        GuardLimits::for_max_frame(crate::codec::DEFAULT_MAX_FRAME)
    }
}

/// Why the guard cut a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a ZMTP 3 greeting: byte {index} is {value:#04x}, {expected:#04x} expected")]
    BadSignature { index: u8, value: u8, expected: u8 },
    #[error("ZMTP major version {0} is not spoken here (3 expected)")]
    Version(u8),
    #[error("command frame claims {claimed} bytes, over the {limit} byte limit")]
    CommandTooBig { claimed: u64, limit: u64 },
    #[error("message frame claims {claimed} bytes, over the {limit} byte limit")]
    FrameTooBig { claimed: u64, limit: u64 },
    #[error("multi-part message claims {claimed} bytes in total, over the {limit} byte limit")]
    MessageTooBig { claimed: u64, limit: u64 },
    #[error("multi-part message has more than {limit} parts")]
    TooManyParts { limit: u32 },
    #[error("the first command is not a well-formed READY")]
    NotReady,
    #[error("only the NULL security mechanism is spoken here")]
    Mechanism,
}

impl Refusal {
    /// The size the peer claimed, when the refusal is about a size.
    pub fn claimed_bytes(&self) -> Option<u64> {
        match self {
            Refusal::CommandTooBig { claimed, .. } | Refusal::FrameTooBig { claimed, .. } | Refusal::MessageTooBig { claimed, .. } => {
                Some(*claimed)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Inside the 64-byte greeting, `seen` bytes in.
    Greeting { seen: u8 },
    /// Expecting the flags byte of the next frame.
    Flags,
    /// Inside the length field: 1 byte, or 8 big-endian bytes when the LONG flag is set.
    Length { flags: u8, got: u8, length: [u8; 8] },
    /// Inside a body, `remaining` bytes still to pass.
    Body { remaining: u64 },
}

/// Follows one direction of a ZMTP 3.x stream chunk by chunk and says whether each chunk
/// may pass. It only looks at the bytes; the caller forwards them unchanged.
#[derive(Debug)]
pub struct ZmtpInspector {
    limits: GuardLimits,
    state: State,
    /// Bytes in the message frames already passed of the current multi-part message.
    message_bytes: u64,
    /// Parts already passed of the current multi-part message.
    message_parts: u32,
}

impl ZmtpInspector {
    pub fn new(limits: GuardLimits) -> ZmtpInspector {
        ZmtpInspector { limits, state: State::Greeting { seen: 0 }, message_bytes: 0, message_parts: 0 }
    }

    /// Checks the next chunk of the stream. `Ok` means every byte of it may go on to the hub; after
    /// an `Err` the connection must be closed, and nothing of the offending chunk forwarded (the
    /// header that breaks a limit is only ever complete in the chunk that is refused).
    pub fn inspect(&mut self, mut bytes: &[u8]) -> Result<(), Refusal> {
        while let Some(&first) = bytes.first() {
            match &mut self.state {
                State::Greeting { seen } => {
                    let take = bytes.len().min(usize::from(GREETING_LEN - *seen));
                    for (offset, &value) in bytes[..take].iter().enumerate() {
                        check_greeting_byte(*seen + offset as u8, value)?;
                    }
                    *seen += take as u8;
                    if *seen == GREETING_LEN {
                        self.state = State::Flags;
                    }
                    bytes = &bytes[take..];
                }
                State::Flags => {
                    self.state = State::Length { flags: first, got: 0, length: [0; 8] };
                    bytes = &bytes[1..];
                }
                State::Length { flags, got, length } => {
                    let width: u8 = if *flags & FLAG_LONG != 0 { 8 } else { 1 };
                    let take = bytes.len().min(usize::from(width - *got));
                    length[usize::from(*got)..usize::from(*got) + take].copy_from_slice(&bytes[..take]);
                    *got += take as u8;
                    bytes = &bytes[take..];
                    if *got == width {
                        let claimed = if width == 8 { u64::from_be_bytes(*length) } else { u64::from(length[0]) };
                        let flags = *flags;
                        self.begin_frame(flags, claimed)?;
                    }
                }
                State::Body { remaining } => {
                    let take = (bytes.len() as u64).min(*remaining);
                    *remaining -= take;
                    if *remaining == 0 {
                        self.state = State::Flags;
                    }
                    bytes = &bytes[take as usize..];
                }
            }
        }
        Ok(())
    }

    /// A frame header is complete: check its claim against the limits before anything of it moves on.
    fn begin_frame(&mut self, flags: u8, claimed: u64) -> Result<(), Refusal> {
        let limits = self.limits;
        if flags & FLAG_COMMAND != 0 {
            if claimed > limits.max_command {
                return Err(Refusal::CommandTooBig { claimed, limit: limits.max_command });
            }
        } else {
            if claimed > limits.max_frame {
                return Err(Refusal::FrameTooBig { claimed, limit: limits.max_frame });
            }
            let total = self.message_bytes.saturating_add(claimed);
            if total > limits.max_frame {
                return Err(Refusal::MessageTooBig { claimed: total, limit: limits.max_frame });
            }
            if self.message_parts >= limits.max_parts {
                return Err(Refusal::TooManyParts { limit: limits.max_parts });
            }
            if flags & FLAG_MORE != 0 {
                self.message_bytes = total;
                self.message_parts += 1;
            } else {
                self.message_bytes = 0;
                self.message_parts = 0;
            }
        }
        self.state = if claimed == 0 { State::Flags } else { State::Body { remaining: claimed } };
        Ok(())
    }
}

/// Signature 0xFF, eight bytes of padding, 0x7F; then the major version, which must be 3. The rest
/// (minor version, mechanism, as-server, filler) is the ROUTER's business.
fn check_greeting_byte(index: u8, value: u8) -> Result<(), Refusal> {
    match index {
        0 if value != 0xff => Err(Refusal::BadSignature { index, value, expected: 0xff }),
        9 if value != 0x7f => Err(Refusal::BadSignature { index, value, expected: 0x7f }),
        10 if value != 3 => Err(Refusal::Version(value)),
        _ => Ok(()),
    }
}
