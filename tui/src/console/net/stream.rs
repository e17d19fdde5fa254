//! The Metrics view's stream: one link of the network task's own that holds the console's
//! metrics subscription and sends the hub's updates on as the view's messages. On a NATS cluster,
//! which has no hub to keep samples, the nodes' own history is asked for instead ([`poll`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fleet_client::Client;
use fleet_protocol::{Message, MetricSubscribe, MetricUpdate};
use serde_json::{Value, json};
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
    // Only a ZeroMQ hub keeps and forwards samples.
    if fleet_protocol::nats::split_endpoints(&settings.settings.hubs).1.is_empty() {
        return poll(settings, asks, actions).await;
    }
    loop {
        let wanted = !ask.nodes.is_empty() || ask.all_nodes;
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

/// How often the nodes are asked for their new samples when there is no hub to stream them.
const POLL_EVERY: Duration = Duration::from_secs(3);

/// The stream without a hub (a NATS cluster): every [`POLL_EVERY`], one `metrics#history` round on
/// the nodes the view shows, for the samples newer than the oldest newest-sample among them; each
/// reply is handed on as that node's update (the view keeps samples by time, so one seen twice
/// changes nothing).
async fn poll(settings: Arc<NetSettings>, mut asks: UnboundedReceiver<MetricSubscribe>, actions: UnboundedSender<Action>) {
    let mut ask = MetricSubscribe::default();
    let mut newest: HashMap<String, u64> = HashMap::new();
    let mut link: Option<Client> = None;
    loop {
        let wanted = !ask.nodes.is_empty() || ask.all_nodes;
        let next = match wanted {
            true => tokio::select! {
                next = asks.recv() => Some(next),
                _ = tokio::time::sleep(POLL_EVERY) => None,
            },
            false => Some(asks.recv().await),
        };
        match next {
            Some(None) => return,
            Some(Some(next)) => {
                ask = next;
                continue;
            }
            None => {}
        }
        if link.is_none() {
            match settings.connect(false).await {
                Ok(client) => link = Some(client),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "no link for the metrics view");
                    continue;
                }
            }
        }
        let Some(client) = link.as_mut() else { continue };
        let since = match ask.all_nodes {
            true => newest.values().min().copied().unwrap_or(0),
            false => ask.nodes.iter().map(|n| newest.get(n).copied().unwrap_or(0)).min().unwrap_or(0),
        };
        let mut args = serde_json::Map::new();
        if !ask.series.is_empty() {
            args.insert("metrics".into(), json!(ask.series.join(",")));
        }
        args.insert("since_ms".into(), json!(since));
        let scope = match ask.all_nodes {
            true => fleet_client::Scope::default(),
            false => fleet_client::Scope::nodes(ask.nodes.clone()),
        };
        let spec = settings.settings.spec(fleet_client::metrics::AGENT, "history", args, &scope, POLL_EVERY);
        match fleet_client::round::run(client, &spec, |_| {}).await {
            Ok(outcome) => {
                for r in outcome.replies.iter().filter(|r| r.reply.status.is_ok()) {
                    let update = history_update(&r.reply.sender, &r.reply.data);
                    if let Some(last) = update.times.last() {
                        newest.insert(update.node.clone(), *last);
                        let _ = actions.send(Action::Metrics(metrics::Msg::Update(update)));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "asking the nodes for their samples");
                link = None;
            }
        }
    }
}

/// A node's `metrics#history` answer (times and one column per series) as the update a hub would
/// have sent.
fn history_update(node: &str, data: &Value) -> MetricUpdate {
    let times = data["times"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
    let series = data["series"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, column)| (name.clone(), column.as_array().into_iter().flatten().map(Value::as_f64).collect()))
        .collect();
    MetricUpdate { node: node.to_string(), times, series }
}
