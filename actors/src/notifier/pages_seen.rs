//! What a channel worker remembers of the pages it took in hand, so that an
//! update can be answered its page questions (is the page still being
//! sent, did it ever arrive, which message does the update follow up)
//! without a read of the delivery log.
//!
//! Every resolve and acknowledge sends an update, and each asked the store
//! for its incident's delivery rows (`Store::deliveries`): under the mixed
//! ingest load that read was most of the notification path's CPU on the
//! tokio threads, a round trip to a connection thread (SQLite) or to the
//! server (PostgreSQL) per update (BENCHMARKS.md, seventh session,
//! proposal 10).
//!
//! The memory answers only where it knows every page: a worker sees every
//! page of its transport (the factory routes them all to it, in order, and
//! a page always reaches it before the updates that follow it), so for an
//! incident opened after the worker started, the pages it took in hand are
//! all there are. An incident opened earlier (before a restart of lim or of
//! the worker) may have pages only the log knows, and so does one whose
//! entry was dropped to bound the memory: for those [`PagesSeen::answer`]
//! says `None` and the caller reads the log, as before.
//!
//! "Opened after the worker started" is read off the wall clock
//! (`created_at` after the worker's start), and also off the log: a
//! delivery read back from it at a start (`Outgoing::from_log`) marks its
//! incident, and every older one (ids are given in opening order), as not
//! known. What is left to the clock is an incident opened before a restart,
//! with nothing pending at it, that pages again after it, on a clock that
//! stepped back across the restart by more than lim was down: its update
//! may then miss the thread of the earlier page.

use std::collections::{HashMap, VecDeque};

use crate::domain::{DeliveryKey, DeliveryStatus, IncidentId, NotificationEvent, Recipient};
use crate::messages::Outgoing;
use crate::time::Timestamp;

/// Incidents remembered at most; past it the oldest is dropped (its updates
/// read the log). A few megabytes at most.
pub(super) const MAX_INCIDENTS: usize = 10_000;

/// A page as the log would show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PageSeen {
    pub key: DeliveryKey,
    pub recipient: Recipient,
    pub status: DeliveryStatus,
    pub external_ref: Option<String>,
}

pub(super) struct PagesSeen {
    /// When the worker started: incidents opened before it are not known.
    since: Timestamp,
    by_incident: HashMap<IncidentId, Vec<PageSeen>>,
    /// Insertion order, for dropping the oldest.
    order: VecDeque<IncidentId>,
    /// The highest incident id dropped: that one and those below it read
    /// the log (ids are given in opening order), and are not taken again.
    dropped_up_to: Option<IncidentId>,
    max: usize,
}

impl PagesSeen {
    pub fn new(since: Timestamp) -> Self {
        Self::with_max(since, MAX_INCIDENTS)
    }

    pub fn with_max(since: Timestamp, max: usize) -> Self {
        PagesSeen {
            since,
            by_incident: HashMap::new(),
            order: VecDeque::new(),
            dropped_up_to: None,
            max: max.max(1),
        }
    }

    /// Whether the pages of `item`'s incident are all known here.
    fn knows(&self, item: &Outgoing) -> bool {
        item.incident.created_at > self.since
            && self
                .dropped_up_to
                .is_none_or(|up_to| item.delivery.incident_id > up_to)
    }

    /// A delivery taken in hand; a page is remembered pending.
    pub fn taken(&mut self, item: &Outgoing) {
        if item.from_log {
            self.forget_up_to(item.delivery.incident_id);
            return;
        }
        if !item.delivery.event.is_page() || !self.knows(item) {
            return;
        }
        let id = item.delivery.incident_id;
        let pages = match self.by_incident.get_mut(&id) {
            Some(pages) => pages,
            None => {
                self.make_room();
                self.order.push_back(id);
                if self.order.len() > 2 * self.max {
                    // Ids of incidents forgotten on their resolve.
                    let known = &self.by_incident;
                    self.order.retain(|id| known.contains_key(id));
                }
                self.by_incident.entry(id).or_default()
            }
        };
        if !pages.iter().any(|p| p.key == item.delivery.key) {
            pages.push(PageSeen {
                key: item.delivery.key.clone(),
                recipient: item.delivery.recipient.clone(),
                status: DeliveryStatus::Pending,
                external_ref: None,
            });
        }
    }

    fn make_room(&mut self) {
        while self.by_incident.len() >= self.max {
            let Some(oldest) = self.order.pop_front() else {
                return;
            };
            if self.by_incident.remove(&oldest).is_some() {
                self.forget_up_to(oldest);
            }
        }
    }

    /// Incident `id` and those opened before it are left to the log.
    fn forget_up_to(&mut self, id: IncidentId) {
        self.dropped_up_to = Some(self.dropped_up_to.map_or(id, |d| d.max(id)));
        self.by_incident.retain(|known, _| *known > id);
    }

    /// A delivery of this worker's ended (delivered, given up, cancelled):
    /// a page's row moves on; once an incident's `resolved` update to any
    /// recipient is done (or found moot) the incident is forgotten, and
    /// what is still to be sent about it (another recipient's update, a
    /// retry) reads the log.
    pub fn settled(&mut self, item: &Outgoing, status: DeliveryStatus, external_ref: Option<&str>) {
        let id = item.delivery.incident_id;
        let Some(pages) = self.by_incident.get_mut(&id) else {
            return;
        };
        match &item.delivery.event {
            NotificationEvent::Page { .. } => {
                if let Some(page) = pages.iter_mut().find(|p| p.key == item.delivery.key) {
                    page.status = status;
                    page.external_ref = external_ref.map(str::to_string);
                }
            }
            NotificationEvent::Update { change, .. } if change == "resolved" => {
                // No page is made for a resolved incident, and those made
                // before its resolve were taken in hand before the update
                // was (the factory keeps their order): no page comes that
                // a fresh entry would miss the earlier ones of.
                self.by_incident.remove(&id);
            }
            NotificationEvent::Update { .. } => {}
        }
    }

    /// The pages an update's recipient was sent about its incident, oldest
    /// first, or `None`: not known here, read the log.
    pub fn answer(&self, item: &Outgoing) -> Option<Vec<PageSeen>> {
        if !self.knows(item) {
            return None;
        }
        let pages = self.by_incident.get(&item.delivery.incident_id)?;
        Some(
            pages
                .iter()
                .filter(|p| p.recipient == item.delivery.recipient)
                .cloned()
                .collect(),
        )
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_incident.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Delivery, IncidentStatus, IncidentSummary, Labels, Target};

    fn hook(name: &str) -> Recipient {
        Recipient::Webhook { name: name.into() }
    }

    fn summary(id: u64, created_at: i64) -> IncidentSummary {
        IncidentSummary {
            id: IncidentId(id),
            title: "t".into(),
            status: IncidentStatus::Triggered,
            severity: None,
            service: "s".into(),
            labels: Labels::default(),
            annotations: Labels::default(),
            created_at: Timestamp(created_at),
            acknowledged: None,
            resolved: None,
        }
    }

    fn page(id: u64, created_at: i64, seq: u32, to: &Recipient) -> Outgoing {
        let target = Target::Channel("hook".into());
        Outgoing {
            delivery: Delivery::pending(
                DeliveryKey::page_fired(IncidentId(id), seq, 0, 0, &target, to),
                IncidentId(id),
                NotificationEvent::Page {
                    step: 0,
                    repeat: 0,
                    target,
                },
                to.clone(),
                Timestamp(created_at),
            ),
            incident: summary(id, created_at),
            still_wanted: None,
            from_log: false,
        }
    }

    fn update(id: u64, created_at: i64, change: &str, to: &Recipient) -> Outgoing {
        Outgoing {
            delivery: Delivery::pending(
                DeliveryKey::update(IncidentId(id), 9, to),
                IncidentId(id),
                NotificationEvent::Update {
                    change: change.into(),
                    by: None,
                    via: None,
                },
                to.clone(),
                Timestamp(created_at),
            ),
            incident: summary(id, created_at),
            still_wanted: None,
            from_log: false,
        }
    }

    #[test]
    fn an_update_sees_its_recipients_pages_as_they_move() {
        let (a, b) = (hook("a"), hook("b"));
        let mut seen = PagesSeen::new(Timestamp(100));
        let (pa, pb) = (page(1, 101, 1, &a), page(1, 101, 1, &b));
        seen.taken(&pa);
        seen.taken(&pb);
        seen.taken(&pa); // taken twice: one row
        let of_a = seen.answer(&update(1, 101, "acknowledged", &a)).unwrap();
        assert_eq!(of_a.len(), 1);
        assert_eq!(of_a[0].status, DeliveryStatus::Pending);
        seen.settled(&pa, DeliveryStatus::Delivered, Some("ts-1"));
        seen.settled(&pb, DeliveryStatus::Failed, None);
        let of_a = seen.answer(&update(1, 101, "acknowledged", &a)).unwrap();
        assert_eq!(
            (of_a[0].status, of_a[0].external_ref.as_deref()),
            (DeliveryStatus::Delivered, Some("ts-1"))
        );
        let of_b = seen.answer(&update(1, 101, "acknowledged", &b)).unwrap();
        assert_eq!(of_b[0].status, DeliveryStatus::Failed);
        // A recipient never paged about a known incident: no pages, for sure.
        assert_eq!(
            seen.answer(&update(1, 101, "acknowledged", &hook("c"))),
            Some(vec![])
        );
    }

    #[test]
    fn what_it_cannot_know_is_left_to_the_log() {
        let a = hook("a");
        let mut seen = PagesSeen::new(Timestamp(100));
        // Opened before the worker started (a restart): pages may predate it.
        seen.taken(&page(1, 99, 1, &a));
        assert_eq!(seen.answer(&update(1, 99, "resolved", &a)), None);
        // Opened in the very millisecond the worker started: not sure.
        seen.taken(&page(3, 100, 1, &a));
        assert_eq!(seen.answer(&update(3, 100, "resolved", &a)), None);
        // Never paged through this worker.
        assert_eq!(seen.answer(&update(2, 150, "resolved", &a)), None);
        // A delivery read back from the log at a start (a clock that
        // stepped back would make incident 5 look new): it and every older
        // incident are left to the log, remembered pages included.
        seen.taken(&page(4, 150, 1, &a));
        assert!(seen.answer(&update(4, 150, "resolved", &a)).is_some());
        let mut reloaded = page(5, 150, 1, &a);
        reloaded.from_log = true;
        seen.taken(&reloaded);
        assert_eq!(seen.answer(&update(5, 150, "resolved", &a)), None);
        assert_eq!(seen.answer(&update(4, 150, "resolved", &a)), None);
        seen.taken(&page(6, 150, 1, &a));
        assert!(seen.answer(&update(6, 150, "resolved", &a)).is_some());
    }

    #[test]
    fn the_oldest_incidents_are_dropped_past_the_bound_and_then_read_the_log() {
        let a = hook("a");
        let mut seen = PagesSeen::with_max(Timestamp(0), 2);
        for id in 1..=3 {
            seen.taken(&page(id, 10, 1, &a));
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(seen.answer(&update(1, 10, "resolved", &a)), None);
        // A later page of a dropped incident is not taken: its memory would
        // miss the first one.
        seen.taken(&page(1, 10, 2, &a));
        assert_eq!(seen.answer(&update(1, 10, "resolved", &a)), None);
        assert_eq!(
            seen.answer(&update(3, 10, "resolved", &a)).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_resolved_update_done_forgets_the_incident() {
        let (a, b) = (hook("a"), hook("b"));
        let mut seen = PagesSeen::new(Timestamp(0));
        seen.taken(&page(1, 10, 1, &a));
        seen.taken(&page(1, 10, 1, &b));
        seen.settled(
            &update(1, 10, "acknowledged", &a),
            DeliveryStatus::Delivered,
            None,
        );
        assert_eq!(
            seen.answer(&update(1, 10, "resolved", &a)).unwrap().len(),
            1
        );
        seen.settled(
            &update(1, 10, "resolved", &a),
            DeliveryStatus::Delivered,
            None,
        );
        assert_eq!(seen.len(), 0);
        // What is still to go about it (b's update, a retry of a's
        // acknowledge) reads the log, not "no pages".
        assert_eq!(seen.answer(&update(1, 10, "resolved", &b)), None);
        assert_eq!(seen.answer(&update(1, 10, "acknowledged", &a)), None);
        // Many incidents opened and resolved keep the order queue bounded.
        let mut seen = PagesSeen::with_max(Timestamp(0), 4);
        for id in 1..=100 {
            seen.taken(&page(id, 10, 1, &a));
            seen.settled(
                &update(id, 10, "resolved", &a),
                DeliveryStatus::Delivered,
                None,
            );
        }
        assert!(seen.order.len() <= 8, "{}", seen.order.len());
        assert_eq!(seen.len(), 0);
    }
}
