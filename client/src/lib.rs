//! fleet's client core: everything a console or a script does with the fleet, written once.
//!
//! - [`link`]: the encrypted link to a hub, with the caller's [`Credentials`] passed in as a value;
//! - [`round`]: one SimpleRPC round (discovery, send, collect, outcome);
//! - [`scope`]: the one builder from the configured [`Settings`] and a [`Scope`] to a request [`Spec`];
//! - [`ddl`]: DDL lookup and input coercion; [`aggregate`]: the DDL's aggregates; [`format`]: values
//!   as people read them;
//! - [`rollout`]: subsets, batches, canaries and failure limits applied to every round; [`chain`]:
//!   identities read back from a list or fleet's JSON, a filter on replies, and who was ok, failed
//!   or silent; [`nodeset`]: compact node sets (`web-[01-07,09]`);
//! - [`process`] and [`xen`]: the process and Xen operations (with the balancer); [`proctree`]:
//!   processes as a forest per host, for tree views;
//! - [`concat`]: the concat agent's arguments, and build replies as node states with identical
//!   diffs folded;
//! - [`jobs`]: background jobs: ids, `--at`/`--every` times, and the jobs agent's replies as rows;
//! - [`metrics`]: live metrics: the metrics agent's replies as hosts, grouped by a fact with
//!   min/avg/max and each group's worst host;
//! - [`error`]: a typed [`ClientError`] and MCollective's exit codes, in one place.
//!
//! No clap, no terminal, no printing and no daemon code: the CLI and the console are faces over it.

pub mod agent_template;
pub mod aggregate;
pub mod chain;
pub mod concat;
pub mod ddl;
pub mod diagnose;
pub mod error;
pub mod format;
pub mod jobs;
pub mod link;
pub mod metrics;
pub mod nodeset;
pub mod process;
pub mod proctree;
pub mod rollout;
pub mod round;
pub mod scope;
pub mod xen;

pub use error::{ClientError, Result, exit};
pub use link::{Client, Credentials, NodeKeys, SignatureCheck, Signer};
pub use rollout::{Count, Rollout};
pub use round::{DiscoveryMethod, Outcome, Progress, ReplyRecord, Spec};
pub use scope::{Scope, Settings};
