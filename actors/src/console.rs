//! The `console` channel: writes each notification as one structured log
//! line. It is the channel of the default policy, so a fresh `lim serve`
//! shows its escalation steps in its own output.

use async_trait::async_trait;

use crate::ports::{Channel, ChannelError, Delivered, Notification};

#[derive(Debug, Default, Clone)]
pub struct ConsoleChannel;

#[async_trait]
impl Channel for ConsoleChannel {
    fn name(&self) -> &str {
        "console"
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        // Under a filter that hides the line, the JSON below is not built
        // (every page of the default policy comes here).
        if !tracing::enabled!(target: "lim::notify", tracing::Level::INFO) {
            return Ok(Delivered::default());
        }
        let i = &n.incident;
        let labels = serde_json::to_string(&i.labels).unwrap_or_default();
        let event = serde_json::to_string(&n.event).unwrap_or_default();
        tracing::info!(
            target: "lim::notify",
            channel = "console",
            incident_id = i.id.0,
            title = %i.title,
            status = i.status.as_str(),
            severity = i.severity.as_deref().unwrap_or(""),
            service = %i.service,
            event = %event,
            labels = %labels,
            "notification"
        );
        Ok(Delivered::default())
    }
}
