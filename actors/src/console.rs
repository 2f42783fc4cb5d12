//! The `console` channel: writes each notification as one structured log
//! line. It is the channel of the default policy, so a fresh `lim serve`
//! shows its escalation steps in its own output.

use async_trait::async_trait;

use crate::ports::{Channel, ChannelError, Notification};

#[derive(Debug, Default, Clone)]
pub struct ConsoleChannel;

#[async_trait]
impl Channel for ConsoleChannel {
    fn name(&self) -> &str {
        "console"
    }

    async fn deliver(&self, n: &Notification) -> Result<(), ChannelError> {
        let labels = serde_json::to_string(&n.labels).unwrap_or_default();
        tracing::info!(
            target: "lim::notify",
            channel = "console",
            incident_id = n.incident_id.0,
            title = %n.title,
            status = n.status.as_str(),
            severity = n.severity.as_deref().unwrap_or(""),
            service = %n.service,
            step = n.step,
            repeat = n.repeat,
            labels = %labels,
            "notification"
        );
        Ok(())
    }
}
