//! `incident-actors`: the core of lim.
//!
//! * [`domain`]: pure logic (alerts, fingerprints, the incident state machine,
//!   escalation policies, restart intensity, heartbeat monitors). No actors,
//!   no I/O.
//! * [`ports`]: the traits the core needs from the world (`Store`, `Channel`);
//!   [`time`] holds the `Clock` port.
//! * [`codec`]: the snapshot format (postcard behind a version byte).
//! * The actors, one per file, their messages in [`messages`]:
//!   [`supervisor`] (root), [`router`] (dedup index, supervises incidents),
//!   [`incident`] (one per open incident, owns its timers), [`persistence`]
//!   (group commit), [`notifier`] (per-channel delivery workers),
//!   [`heartbeat`] (one per heartbeat monitor, owns its deadline timer).
//! * [`inspect`]: the live actor tree as data (each actor answers an
//!   inspect message with its observable state).
//! * [`metrics`]: the core's Prometheus metrics, in a registry per system.
//! * [`system`]: `spawn_system` wires them and returns the [`system::System`]
//!   handle the server talks to.
//!
//! This crate never depends on axum, sqlx, reqwest, lettre or slack-morphism.

pub mod codec;
pub mod console;
pub mod domain;
pub mod heartbeat;
pub mod incident;
pub mod inspect;
pub mod memory_store;
pub mod messages;
pub mod metrics;
pub mod notifier;
pub mod persistence;
pub mod ports;
pub mod router;
pub mod store_health;
pub mod supervisor;
pub mod system;
pub mod time;
pub mod timer_queue;

pub use domain::{HeartbeatMonitor, HeartbeatStatus};
pub use messages::HeartbeatError;
pub use system::{spawn_system, System, SystemConfig, SystemDeps};
