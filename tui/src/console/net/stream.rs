//! The Metrics view's stream: one link of the network task's own that holds the console's
//! metrics subscription and sends the hub's updates on as the view's messages.

use std::sync::Arc;

use fleet_client::Client;
use fleet_protocol::{Message, MetricSubscribe};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::{NetSettings, RETRY_EVERY};
use crate::console::action::Action;
use crate::console::metrics;

/// What woke the metrics stream.
enum StreamEvent {
    Ask(Option<MetricSubscribe>),
    Update(fleet_protocol::MetricUpdate),
    Other,
    Lost(String),
    Retry,
}

/// The Metrics view's stream: a link of its own holding the console's metrics subscription, its
/// `MetricUpdate`s sent on as the view's messages. Each ask replaces the subscription in force;
/// an empty ask is sent to the hub (it stops forwarding) and the link closed until the next ask.
/// A lost link is opened again with the latest ask every [`RETRY_EVERY`]. Ends with the UI.
pub(super) async fn metrics_stream(
    settings: Arc<NetSettings>,
    mut asks: UnboundedReceiver<MetricSubscribe>,
    actions: UnboundedSender<Action>,
) {
    let mut ask = MetricSubscribe::default();
    let mut link: Option<Client> = None;
    // Only a ZeroMQ hub keeps and forwards samples; on a NATS cluster the stream stays closed
    // rather than opening a connection every few seconds to be told so.
    let has_hub = !fleet_protocol::nats::split_endpoints(&settings.settings.hubs).1.is_empty();
    if !has_hub {
        tracing::info!("no ZeroMQ hub in the hub list: the Metrics view gets no live stream on NATS");
    }
    loop {
        let wanted = has_hub && (!ask.nodes.is_empty() || ask.all_nodes);
        if wanted && link.is_none() {
            match settings.connect(false).await {
                Ok(mut client) => match client.subscribe_metrics(ask.clone()).await {
                    Ok(()) => link = Some(client),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot subscribe to metrics"),
                },
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "no link for the metrics stream"),
            }
        }
        let event = match link.as_mut() {
            Some(client) => tokio::select! {
                next = asks.recv() => StreamEvent::Ask(next),
                msg = client.recv() => match msg {
                    Ok(Message::MetricUpdate(update)) => StreamEvent::Update(update),
                    Ok(_) => StreamEvent::Other,
                    Err(e) => StreamEvent::Lost(format!("{e:#}")),
                },
            },
            None if wanted => tokio::select! {
                _ = tokio::time::sleep(RETRY_EVERY) => StreamEvent::Retry,
                next = asks.recv() => StreamEvent::Ask(next),
            },
            None => StreamEvent::Ask(asks.recv().await),
        };
        match event {
            StreamEvent::Ask(None) => return,
            StreamEvent::Ask(Some(next)) => {
                ask = next;
                let empty = ask.nodes.is_empty() && !ask.all_nodes;
                if let Some(client) = link.as_mut() {
                    let sent = client.subscribe_metrics(ask.clone()).await;
                    if empty || sent.is_err() {
                        link = None;
                    }
                }
            }
            StreamEvent::Update(update) => {
                let _ = actions.send(Action::Metrics(metrics::Msg::Update(update)));
            }
            StreamEvent::Other | StreamEvent::Retry => {}
            StreamEvent::Lost(reason) => {
                tracing::warn!(%reason, "metrics stream link lost; opening another");
                link = None;
            }
        }
    }
}
