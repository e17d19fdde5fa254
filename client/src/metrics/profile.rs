//! Metric profiles: named sets of graphs (`web` = load, network and the count of `nginx`
//! processes), written once for the console, which draws a profile's graphs for a host or a
//! group, and `fleet metrics --profile`, which prints them as columns. The console config holds
//! them (`[profiles.NAME]`, in file order); `match`, a compound filter as `-S` takes it, says which
//! hosts a profile is for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fleet_protocol::Filter;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use serde_json::Map;

use crate::error::{ClientError, Result};
use crate::link::Client;
use crate::process;
use crate::round;
use crate::scope::{Scope, Settings};

/// Profile name -> the hosts its `match` selects.
pub type Matching = BTreeMap<String, BTreeSet<String>>;

/// A graph of process counts: `procs:nginx`.
pub const PROCS: &str = "procs:";

/// noded's own metrics (its proc reader's names) and the figures the client core derives from
/// their parts.
pub const KNOWN: &[&str] = &[
    "load1",
    "load5",
    "load15",
    "cpu_user_pct",
    "cpu_system_pct",
    "cpu_iowait_pct",
    "cpu_busy_pct",
    "mem_total_bytes",
    "mem_used_bytes",
    "mem_available_bytes",
    "mem_used_pct",
    "swap_total_bytes",
    "swap_used_bytes",
    "swap_used_pct",
    "disk_used_max_pct",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
    "processes",
    "zombies",
];

/// Families with one series per part, named `FAMILY:PART` (a mount, an interface).
const PER_PART: &[(&str, &str)] = &[("disk_used_pct", "MOUNT"), ("net_rx_bytes_per_s", "IFACE"), ("net_tx_bytes_per_s", "IFACE")];

/// One graph of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Graph {
    /// A metric a node samples (or the client core derives), by its name.
    Metric(String),
    /// `procs:NAME`: how many processes whose name matches NAME (a regex, as `pgrep` takes it)
    /// the host runs, counted through the process agent.
    Procs(String),
}

impl Graph {
    /// A graph as the config writes it; the error says why the entry is not one.
    pub fn parse(entry: &str) -> std::result::Result<Graph, String> {
        if let Some(name) = entry.strip_prefix(PROCS) {
            return match name.trim() {
                "" => Err(format!("{PROCS}NAME needs a process name")),
                name => Ok(Graph::Procs(name.to_string())),
            };
        }
        let per_part =
            PER_PART.iter().any(|(family, _)| entry.strip_prefix(family).and_then(|r| r.strip_prefix(':')).is_some_and(|p| !p.is_empty()));
        // collectd's names: host/plugin-instance/type-instance[:source].
        let collectd = entry.contains('/') && entry.chars().all(|c| c.is_ascii_alphanumeric() || "_.:/@+-".contains(c));
        if KNOWN.contains(&entry) || per_part || collectd {
            return Ok(Graph::Metric(entry.to_string()));
        }
        let parts: Vec<String> = PER_PART.iter().map(|(family, part)| format!("{family}:{part}")).collect();
        Err(format!(
            "unknown metric (known: {}, {}, collectd's host/plugin/type names, and {PROCS}NAME for a process count)",
            KNOWN.join(", "),
            parts.join(", ")
        ))
    }

    /// The graph's series name in a host's metrics: `load1`, `procs:nginx`.
    pub fn name(&self) -> String {
        match self {
            Graph::Metric(m) => m.clone(),
            Graph::Procs(p) => format!("{PROCS}{p}"),
        }
    }
}

/// A bad profile in the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {profile}: graphs: at least one graph is needed")]
    Empty { profile: String },
    #[error("profile {profile}: graph {entry:?}: {why}")]
    BadGraph { profile: String, entry: String, why: String },
    #[error("profile {profile}: match {filter:?}: column {column}: {message}")]
    BadMatch { profile: String, filter: String, column: usize, message: String },
}

/// A named set of graphs.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub graphs: Vec<Graph>,
    /// The hosts the profile is for, as a compound filter (`role=web`); `None`: every host.
    pub matches: Option<String>,
}

impl Profile {
    /// A profile from its config entry, checked: at least one graph, each a known metric or a
    /// process count, and a `match` that parses.
    pub fn new(name: &str, graphs: &[String], matches: Option<&str>) -> std::result::Result<Profile, ProfileError> {
        if graphs.is_empty() {
            return Err(ProfileError::Empty { profile: name.to_string() });
        }
        let graphs = graphs
            .iter()
            .map(|entry| {
                Graph::parse(entry.trim()).map_err(|why| ProfileError::BadGraph { profile: name.to_string(), entry: entry.clone(), why })
            })
            .collect::<std::result::Result<Vec<Graph>, ProfileError>>()?;
        let matches = matches.map(str::trim).filter(|m| !m.is_empty()).map(String::from);
        let profile = Profile { name: name.to_string(), graphs, matches };
        if let Some(filter) = profile.filter() {
            filter.compile().map_err(|e| ProfileError::BadMatch {
                profile: name.to_string(),
                filter: profile.matches.clone().unwrap_or_default(),
                column: e.column,
                message: e.message,
            })?;
        }
        Ok(profile)
    }

    /// The filter of `match`, if any.
    pub fn filter(&self) -> Option<Filter> {
        self.matches.as_ref().map(|m| Filter { compound: vec![m.clone()], ..Filter::default() })
    }

    /// The graphs' names, in order: the columns `fleet metrics --profile` prints.
    pub fn columns(&self) -> Vec<String> {
        self.graphs.iter().map(Graph::name).collect()
    }

    /// The metrics graphed (the graphs that are not process counts), in order.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.graphs.iter().filter_map(|g| match g {
            Graph::Metric(m) => Some(m.as_str()),
            Graph::Procs(_) => None,
        })
    }

    /// The series to ask the hub or the nodes for (a derived figure needs its parts).
    pub fn series_patterns(&self) -> Vec<String> {
        super::series_of(self.metric_names())
    }

    /// The process names counted (`procs:NAME`).
    pub fn process_names(&self) -> impl Iterator<Item = &str> {
        self.graphs.iter().filter_map(|g| match g {
            Graph::Procs(p) => Some(p.as_str()),
            Graph::Metric(_) => None,
        })
    }

    /// Whether `host` fits the profile; `matching` holds the hosts each `match` selects.
    fn fits(&self, matching: &Matching, host: &str) -> bool {
        self.matches.is_none() || matching.get(&self.name).is_some_and(|hosts| hosts.contains(host))
    }
}

/// The profile `host` gets when none is chosen: the first, in the config's order, whose `match`
/// selects it (`matching`: profile name -> the hosts its match selects). A profile without
/// `match` fits every host, so one written last is the default.
pub fn pick(profiles: &[Profile], matching: &Matching, host: &str) -> Option<usize> {
    profiles.iter().position(|p| p.fits(matching, host))
}

/// The profile a group gets: the one most of its hosts get, the earlier in the config on a tie.
pub fn pick_for_group(profiles: &[Profile], matching: &Matching, hosts: &[String]) -> Option<usize> {
    let mut votes = vec![0usize; profiles.len()];
    for host in hosts {
        if let Some(i) = pick(profiles, matching, host) {
            votes[i] += 1;
        }
    }
    // max_by_key keeps the last of equal maxima: walk backwards so the earlier profile wins.
    votes.iter().enumerate().rev().filter(|(_, n)| **n > 0).max_by_key(|(_, n)| **n).map(|(i, _)| i)
}

/// The profile called `name`; the error lists the profiles there are.
pub fn find<'a>(profiles: &'a [Profile], name: &str) -> Result<&'a Profile> {
    profiles.iter().find(|p| p.name == name).ok_or_else(|| {
        let known: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
        let known = if known.is_empty() { "none: add [profiles.NAME] to the config file".to_string() } else { known.join(", ") };
        ClientError::input(format!("no metric profile {name:?} (profiles: {known})"))
    })
}

/// The hosts each profile's `match` selects, by profile name (profiles without `match` are left
/// out: they fit every host). Discovered as `-S` discovers: from the hubs' registries, or by
/// broadcast when the filter has data functions only the nodes can answer.
pub async fn matching(client: &mut Client, settings: &Settings, profiles: &[Profile]) -> Result<Matching> {
    let mut out = Matching::new();
    for profile in profiles {
        let Some(filter) = profile.filter() else { continue };
        let spec = settings.spec("rpcutil", "ping", Map::new(), &Scope::filter(filter), Duration::ZERO);
        out.insert(profile.name.clone(), round::discover(client, &spec).await?.into_iter().collect());
    }
    Ok(out)
}

/// The `procs:NAME` graphs' values: for each process name, the hosts to count it on; returns
/// each graph's count by host (`procs:nginx` -> host -> count), one process list round per name.
pub async fn process_counts(
    client: &mut Client,
    settings: &Settings,
    wanted: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, BTreeMap<String, u64>>> {
    let mut out = BTreeMap::new();
    for (name, hosts) in wanted.iter().filter(|(_, hosts)| !hosts.is_empty()) {
        out.insert(Graph::Procs(name.clone()).name(), process::count(client, settings, hosts.clone(), name).await?);
    }
    Ok(out)
}

/// `[profiles.NAME]` tables of a config file, in the file's order, each checked ([`Profile::new`]).
/// For serde's `deserialize_with` under a TOML deserializer: TOML tables come out sorted by
/// name, so each entry's place in the file (its span) puts them back in order.
pub fn in_file_order<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Profile>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        #[serde(default)]
        graphs: Vec<String>,
        #[serde(default, rename = "match")]
        matches: Option<String>,
    }
    let tables: BTreeMap<String, toml::Spanned<Entry>> = BTreeMap::deserialize(d)?;
    let mut tables: Vec<(String, toml::Spanned<Entry>)> = tables.into_iter().collect();
    tables.sort_by_key(|(_, entry)| entry.span().start);
    tables
        .into_iter()
        .map(|(name, entry)| {
            let entry = entry.into_inner();
            Profile::new(&name, &entry.graphs, entry.matches.as_deref()).map_err(D::Error::custom)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str, graphs: &[&str], matches: Option<&str>) -> Profile {
        Profile::new(name, &graphs.iter().map(|g| g.to_string()).collect::<Vec<_>>(), matches).unwrap()
    }

    #[test]
    fn graphs_are_known_metrics_parts_collectd_names_or_process_counts() {
        assert_eq!(Graph::parse("load1"), Ok(Graph::Metric("load1".into())));
        assert_eq!(Graph::parse("disk_used_pct:/var"), Ok(Graph::Metric("disk_used_pct:/var".into())));
        assert_eq!(Graph::parse("net_rx_bytes_per_s:eth0"), Ok(Graph::Metric("net_rx_bytes_per_s:eth0".into())));
        assert_eq!(Graph::parse("web1/load/load:shortterm"), Ok(Graph::Metric("web1/load/load:shortterm".into())));
        assert_eq!(Graph::parse("procs:nginx"), Ok(Graph::Procs("nginx".into())));
        assert_eq!(Graph::Procs("nginx".into()).name(), "procs:nginx");
        for bad in ["lod1", "net_rx_bps", "disk_used_pct:", "load*", "procs:", "procs:  "] {
            assert!(Graph::parse(bad).is_err(), "{bad}");
        }
        assert!(Graph::parse("lod1").unwrap_err().contains("known: load1, load5"));
    }

    #[test]
    fn a_bad_profile_names_itself_and_the_bad_entry() {
        let graphs = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Profile::new("web", &[], None).unwrap_err().to_string(), "profile web: graphs: at least one graph is needed");
        let e = Profile::new("web", &graphs(&["load1", "net_rx_bps"]), None).unwrap_err().to_string();
        assert!(e.starts_with("profile web: graph \"net_rx_bps\": unknown metric (known: load1"), "{e}");
        let e = Profile::new("db", &graphs(&["load1"]), Some("role=db and (")).unwrap_err();
        assert!(matches!(&e, ProfileError::BadMatch { profile, column, .. } if profile == "db" && *column > 0), "{e}");
        assert!(e.to_string().starts_with("profile db: match \"role=db and (\": column "), "{e}");
    }

    #[test]
    fn profiles_come_in_the_files_order_not_sorted_by_name() {
        #[derive(Deserialize)]
        struct File {
            #[serde(deserialize_with = "in_file_order")]
            profiles: Vec<Profile>,
        }
        let text =
            "[profiles.web]\ngraphs = [\"load1\"]\n\n[profiles.db]\ngraphs = [\"load1\"]\n\n[profiles.app]\ngraphs = [\"procs:java\"]\n";
        let file: File = toml::from_str(text).unwrap();
        assert_eq!(file.profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["web", "db", "app"]);
        let e = toml::from_str::<File>(&text.replace("[\"load1\"]\n\n[profiles.app]", "[\"lod1\"]\n\n[profiles.app]")).err().unwrap();
        assert!(e.to_string().contains("profile db: graph \"lod1\": unknown metric"), "{e}");
    }

    #[test]
    fn a_profile_asks_for_the_series_its_graphs_need() {
        let web = profile("web", &["load1", "net_rx_bytes_per_s", "disk_used_max_pct", "procs:nginx"], Some("role=web"));
        assert_eq!(web.series_patterns(), ["load1", "net_rx_bytes_per_s:*", "disk_used_pct:*"]);
        assert_eq!(web.columns(), ["load1", "net_rx_bytes_per_s", "disk_used_max_pct", "procs:nginx"]);
        assert_eq!(web.process_names().collect::<Vec<_>>(), ["nginx"]);
        assert_eq!(web.filter().unwrap().compound, ["role=web"]);
    }

    #[test]
    fn hosts_get_the_first_profile_that_fits_and_groups_the_one_most_hosts_get() {
        let profiles =
            [profile("web", &["load1"], Some("role=web")), profile("db", &["load1"], Some("role=db")), profile("rest", &["load1"], None)];
        let matching: Matching = [
            ("web".to_string(), ["web-01", "web-02", "both"].map(String::from).into()),
            ("db".to_string(), ["db-01", "both"].map(String::from).into()),
        ]
        .into();
        assert_eq!(pick(&profiles, &matching, "web-01"), Some(0));
        assert_eq!(pick(&profiles, &matching, "both"), Some(0), "the first in the file wins");
        assert_eq!(pick(&profiles, &matching, "db-01"), Some(1));
        assert_eq!(pick(&profiles, &matching, "cache-01"), Some(2), "a profile without match fits every host");
        assert_eq!(pick(&profiles[..2], &matching, "cache-01"), None);
        let hosts = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(pick_for_group(&profiles, &matching, &hosts(&["db-01", "web-01", "web-02"])), Some(0));
        assert_eq!(pick_for_group(&profiles, &matching, &hosts(&["db-01", "web-01"])), Some(0), "a tie: the earlier");
        assert_eq!(pick_for_group(&profiles, &matching, &hosts(&["db-01", "cache-01", "cache-02"])), Some(2));
        assert_eq!(pick_for_group(&profiles[..2], &matching, &hosts(&["cache-01"])), None);
    }
}
