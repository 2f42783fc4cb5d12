//! Pure domain logic: no actors, no I/O, no clock. Everything here is a
//! function of its inputs and is unit tested in place.

pub mod alert;
pub mod alert_map;
pub mod delivery;
pub mod directory;
pub mod fingerprint;
pub mod heartbeat;
pub mod incident;
pub mod labels;
pub mod policy;
pub mod recipient_set;
pub mod restart;
pub mod schedule;
pub mod silence;

pub use alert::{Alert, AlertStatus, Labels};
pub use delivery::{
    AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus, IncidentSummary, Notification,
    NotificationEvent, Recipient,
};
pub use directory::{Contact, Directory, ResolveTargets};
pub use fingerprint::Fingerprint;
pub use heartbeat::{
    DeadlineEffect, HeartbeatConfigError, HeartbeatHealth, HeartbeatMonitor, HeartbeatState,
    HeartbeatStatus, PingEffect,
};
pub use incident::{
    AlertEntry, Attribution, Change, Deadlines, EventKind, Incident, IncidentId, IncidentStatus,
    IngestAction, Interface, TimelineEvent, TransitionError,
};
pub use policy::{EscalationPolicy, EscalationState, EscalationStep, StepFired, Target};
pub use restart::{RestartIntensity, RestartPolicy};
pub use schedule::{
    on_call_at, on_call_shift, OnCall, Override, Rotation, Schedule, ScheduleError, Shift,
    ShiftLength, Team, User,
};
pub use silence::{MatchOp, Matcher, MatcherError, Silence, SilenceId, SilenceState};
