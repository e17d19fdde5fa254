//! The network task against a real embedded hub and real nodes: the Processes and Xen panels'
//! commands go out with the configured collective, not a default.

use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;
use crate::console::action::Scope;
use crate::console::processes::{self, Column};
use crate::console::xen as xen_panel;

const WAIT: Duration = Duration::from_secs(30);

/// Waits for the first action `pick` accepts.
async fn wait_for<T>(inbox: &mut UnboundedReceiver<Action>, mut pick: impl FnMut(Action) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let action = inbox.recv().await.expect("the network task is running");
            if let Some(found) = pick(action) {
                return found;
            }
        }
    })
    .await
    .expect("an answer within 30 s")
}

/// Lists every process through a network task whose settings carry `collective`; returns how
/// many hosts were asked.
async fn hosts_listed(fleet: &crate::demo::EmbeddedFleet, collective: &str) -> usize {
    let settings = fleet_client::Settings { hubs: vec![fleet.endpoint.clone()], collective: collective.into(), ..Default::default() };
    let (actions, mut inbox) = unbounded_channel();
    let (commands, rx) = unbounded_channel();
    let task = tokio::spawn(run(settings, fleet.security.credentials(), actions, rx));
    wait_for(&mut inbox, |a| matches!(a, Action::Link(LinkState::Connected { .. })).then_some(())).await;
    let list = processes::Cmd::List {
        seq: 7,
        pattern: String::new(),
        zombies: false,
        user: String::new(),
        scope: Scope::default(),
        sort: (Column::Host, false),
    };
    commands.send(NetCommand::Processes(list)).unwrap();
    let listing = wait_for(&mut inbox, |a| match a {
        Action::Processes(processes::Msg::Listed { seq: 7, listing }) => Some(listing),
        Action::Processes(processes::Msg::ListFailed { error, .. }) => panic!("listing failed: {error}"),
        _ => None,
    })
    .await;
    assert_eq!(listing.hosts_answered, listing.hosts_asked, "{:?}", listing.no_reply);
    if listing.hosts_asked > 0 {
        assert!(!listing.procs.is_empty());
    }
    commands.send(NetCommand::Xen(xen_panel::Cmd::Refresh { scope: Scope::default() })).unwrap();
    let view = wait_for(&mut inbox, |a| match a {
        Action::Xen(xen_panel::Msg::Refreshed { result, .. }) => Some(result.expect("xen refresh")),
        _ => None,
    })
    .await;
    assert_eq!(view.dom0s.is_empty(), listing.hosts_asked == 0, "dom0s {:?}", view.dom0s);
    task.abort();
    listing.hosts_asked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panels_use_the_configured_collective() {
    let fleet = crate::demo::start_in("ops").await.unwrap();
    // Wait for the six nodes to register.
    let settings = fleet_client::Settings { hubs: vec![fleet.endpoint.clone()], collective: "ops".into(), ..Default::default() };
    let mut client = fleet_client::Client::connect(&settings, &fleet.security.credentials(), false).await.unwrap();
    crate::demo::wait_for_registry(&mut client, "ops", fleet.nodes.len(), WAIT).await.unwrap();
    assert_eq!(hosts_listed(&fleet, "ops").await, fleet.nodes.len());
    // The same fleet through a console configured for another collective finds nobody there.
    assert_eq!(hosts_listed(&fleet, "fleet").await, 0);
    fleet.stop();
}
