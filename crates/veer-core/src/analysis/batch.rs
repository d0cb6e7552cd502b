//! Many analyses' instant queries as few queries: the queries of every rollout analysed at
//! one moment, planned together ([`plan`]), sent once each ([`answers`]), and each rollout's
//! answer picked out again ([`pick`]).
//!
//! - The same query asked twice (two metrics of one rollout with one window share their
//!   request count) is sent once.
//! - A built-in query (`builtin::Builtin`) asked for several rollouts over the same window is
//!   sent once, grouped by exactly the labels the rollouts' variables fill (`reporter=
//!   "destination"`: namespace, service name and version; `reporter="source"`: service
//!   namespace and name), each label matching the rollouts' values as a regex alternation of
//!   literals. Each group computes what that rollout's own query computes (the same series,
//!   aggregated in the same order), so the values, and so the verdicts, are those of the
//!   rollout's own query. A group no series answers is no data, as the own query's empty
//!   answer is.
//! - The grouped queries over one window (a policy's metrics and its request count) are sent
//!   as one query, each part's series tagged with the part's index ([`PART_LABEL`], set by
//!   `label_replace`, joined by `or`): the values are untouched, and a wake of rollouts that
//!   share an interval costs one request to Prometheus, however many metrics they check.
//! - A custom PromQL template is opaque (veer cannot tell how it aggregates) and is sent per
//!   rollout; so is the one built-in query of a window that only one rollout asks for
//!   (exactly the query it always was: grouping would save no request).
//! - A combined query Prometheus refuses is sent again part by part; a grouped part it refuses
//!   (or a provider that answers no series) falls back to each rollout's own query; an
//!   unreachable Prometheus is unreachable for every rollout of the group, as it would be for
//!   their own queries.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, Stream, StreamExt};

use super::builtin::Builtin;
use super::prometheus::{MetricsProvider, SeriesOutcome};
use super::template::{QueryTemplate, Vars};
use super::verdict::QueryOutcome;

/// One instant query an analysis needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Instant {
    /// The rollout's own query, or its template and why it does not render.
    pub query: Result<String, NotRendered>,
    /// For a built-in query: what it may share a grouped query by.
    pub member: Option<Member>,
}

/// A template that does not render: never sent, a query error of the check.
#[derive(Debug, Clone, PartialEq)]
pub struct NotRendered {
    pub template: String,
    pub reason: String,
}

/// A built-in query of one rollout, as a member of a grouped query.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub builtin: Builtin,
    pub window: Duration,
    /// The rollout's value of each of `builtin.group_labels()`, in that order.
    pub values: Vec<String>,
}

impl Instant {
    /// `template` rendered with `vars`; `builtin` says which built-in query it is, if one.
    pub fn new(template: &QueryTemplate, builtin: Option<Builtin>, vars: &Vars) -> Instant {
        match template.render(vars) {
            Ok(query) => Instant {
                query: Ok(query),
                member: builtin.map(|b| Member {
                    builtin: b,
                    window: vars.interval,
                    values: b
                        .group_labels()
                        .iter()
                        .map(|(_, var)| var.of(vars).to_string())
                        .collect(),
                }),
            },
            Err(e) => Instant {
                query: Err(NotRendered {
                    template: template.as_str().to_string(),
                    reason: e.to_string(),
                }),
                member: None,
            },
        }
    }

    /// The query recorded with the check: the rollout's own, or the template that did not
    /// render.
    pub fn text(&self) -> &str {
        match &self.query {
            Ok(q) => q,
            Err(n) => &n.template,
        }
    }
}

/// The label a combined query tags each part's series with: the part's index in
/// [`Query::Grouped`]'s `parts`.
pub const PART_LABEL: &str = "veer_part";

/// A query to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// One rollout's query (maybe asked by several instants): one number.
    Single(String),
    /// The grouped queries of one window (each one series per rollout), sent as `text`: the
    /// one part itself, or every part's series tagged with its index ([`PART_LABEL`]).
    Grouped { text: String, parts: Vec<String> },
}

impl Query {
    /// The grouped queries `parts` as one query (see [`Query::Grouped`]).
    fn grouped(parts: Vec<String>) -> Query {
        let text = match parts.as_slice() {
            [one] => one.clone(),
            _ => parts
                .iter()
                .enumerate()
                .map(|(n, part)| format!(r#"label_replace({part}, "{PART_LABEL}", "{n}", "", "")"#))
                .collect::<Vec<_>>()
                .join(" or "),
        };
        Query::Grouped { text, parts }
    }

    /// The PromQL sent.
    pub fn text(&self) -> &str {
        match self {
            Query::Single(text) | Query::Grouped { text, .. } => text,
        }
    }
}

/// Where an instant's answer comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Nothing is sent: the template does not render (a query error).
    NotRendered(String),
    /// Query `n` ([`Plan::queries`]) answers it.
    Single(usize),
    /// Part `part` of grouped query `query` answers it: its series is the one with `labels`;
    /// `own` is its own query, asked instead if the part is refused.
    Grouped {
        query: usize,
        part: usize,
        labels: Vec<(&'static str, String)>,
        own: String,
    },
}

/// The queries of a batch of instants, each once, and where each instant's answer comes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub queries: Vec<Query>,
    /// One per instant, in the order given.
    pub sources: Vec<Source>,
}

/// What rollouts share a grouped query by: the built-in query (by name) and its window.
type GroupKey = (&'static str, Duration);

/// Plans `instants` (of any number of rollouts): when `group` (the provider answers series),
/// the built-in queries over one window are grouped and sent as one query, unless that window
/// has one built-in query of one rollout; everything else is sent once per distinct query.
/// Pure and deterministic.
pub fn plan(instants: &[Instant], group: bool) -> Plan {
    // The distinct members of each (built-in, window).
    let mut members: BTreeMap<GroupKey, (Builtin, BTreeSet<&[String]>)> = BTreeMap::new();
    // A member whose own query rendered has values that are safe in a query.
    for m in instants
        .iter()
        .filter(|i| i.query.is_ok())
        .filter_map(|i| i.member.as_ref())
    {
        members
            .entry((m.builtin.as_str(), m.window))
            .or_insert_with(|| (m.builtin, BTreeSet::new()))
            .1
            .insert(&m.values);
    }
    let mut out = Plan::default();
    // Each grouped (built-in, window): its query and its part of it.
    let mut grouped: HashMap<GroupKey, (usize, usize)> = HashMap::new();
    if group {
        let mut windows: BTreeMap<Duration, Vec<(GroupKey, String)>> = BTreeMap::new();
        let mut built_ins: HashMap<Duration, usize> = HashMap::new();
        for (_, window) in members.keys() {
            *built_ins.entry(*window).or_default() += 1;
        }
        for (key, (builtin, distinct)) in &members {
            // One built-in query of one rollout: its own query is the same one request.
            if distinct.len() < 2 && built_ins.get(&key.1) == Some(&1) {
                continue;
            }
            if let Some(query) = grouped_query(*builtin, key.1, distinct) {
                windows.entry(key.1).or_default().push((*key, query));
            }
        }
        for parts in windows.into_values() {
            let query = out.queries.len();
            let mut texts = Vec::with_capacity(parts.len());
            for (part, (key, text)) in parts.into_iter().enumerate() {
                grouped.insert(key, (query, part));
                texts.push(text);
            }
            out.queries.push(Query::grouped(texts));
        }
    }
    let mut singles: HashMap<String, usize> = HashMap::new();
    for i in instants {
        let slot = i.member.as_ref().and_then(|m| {
            grouped
                .get(&(m.builtin.as_str(), m.window))
                .map(|slot| (m, *slot))
        });
        let source = match (&i.query, slot) {
            (Err(n), _) => Source::NotRendered(n.reason.clone()),
            (Ok(own), Some((m, (query, part)))) => Source::Grouped {
                query,
                part,
                labels: m
                    .builtin
                    .group_labels()
                    .iter()
                    .map(|(label, _)| *label)
                    .zip(m.values.iter().cloned())
                    .collect(),
                own: own.clone(),
            },
            (Ok(own), None) => {
                let n = *singles.entry(own.clone()).or_insert_with(|| {
                    out.queries.push(Query::Single(own.clone()));
                    out.queries.len() - 1
                });
                Source::Single(n)
            }
        };
        out.sources.push(source);
    }
    out
}

/// The grouped query of `builtin` over `window` for the `distinct` members' values.
fn grouped_query(
    builtin: Builtin,
    window: Duration,
    distinct: &BTreeSet<&[String]>,
) -> Option<String> {
    let labels = builtin.group_labels();
    let template = builtin.grouped_template(|var| {
        let position = labels.iter().position(|(_, v)| *v == var);
        let values: BTreeSet<&String> = distinct
            .iter()
            .filter_map(|m| position.and_then(|p| m.get(p)))
            .collect();
        values.into_iter().cloned().collect()
    });
    // Only `{{ interval }}` is left to fill; the placeholder values are never used.
    template.render(&Vars::new("-", "-", "-", window)).ok()
}

/// One rollout's answer from a grouped query's: the series with `labels`, read as its own
/// query's answer would be (none: no data; several: several series). `None` when the grouped
/// query was refused: ask the rollout's own query instead. Pure.
pub fn pick(answer: &SeriesOutcome, labels: &[(&str, String)]) -> Option<QueryOutcome> {
    match answer {
        SeriesOutcome::Samples(samples) => {
            let mut matching = samples.iter().filter(|s| {
                labels
                    .iter()
                    .all(|(l, v)| s.labels.get(*l).map(String::as_str) == Some(v.as_str()))
            });
            Some(match (matching.next(), matching.count()) {
                (None, _) => QueryOutcome::NoData,
                (Some(one), 0) => one.value.clone(),
                (Some(_), more) => QueryOutcome::SeveralSeries(more + 1),
            })
        }
        SeriesOutcome::QueryError(_) => None,
        SeriesOutcome::Unreachable(m) => Some(QueryOutcome::Unreachable(m.clone())),
    }
}

/// A grouped answer's series by part and by their values of the part's group labels, so
/// that picking each rollout's costs a lookup, not a scan of every series (1,000 rollouts:
/// 1,000 series a part).
struct Index<'s> {
    series: HashMap<(usize, Vec<&'s str>), Vec<usize>>,
}

impl<'s> Index<'s> {
    /// `answer` read as the answer of the parts `members` are of: series tagged with their
    /// part ([`PART_LABEL`]), or all of part `alone`.
    fn of(answer: &'s SeriesOutcome, members: &[Answered<'_>], alone: Option<usize>) -> Index<'s> {
        let mut names: HashMap<usize, Vec<&'static str>> = HashMap::new();
        for m in members {
            names
                .entry(m.part)
                .or_insert_with(|| m.labels.iter().map(|(l, _)| *l).collect());
        }
        let mut series: HashMap<(usize, Vec<&'s str>), Vec<usize>> = HashMap::new();
        if let SeriesOutcome::Samples(samples) = answer {
            for (i, s) in samples.iter().enumerate() {
                let part = match alone {
                    Some(part) => Some(part),
                    None => s.labels.get(PART_LABEL).and_then(|p| p.parse().ok()),
                };
                let Some((part, names)) = part.and_then(|p| names.get(&p).map(|n| (p, n))) else {
                    continue;
                };
                let key: Option<Vec<&str>> = names
                    .iter()
                    .map(|l| s.labels.get(*l).map(String::as_str))
                    .collect();
                if let Some(key) = key {
                    series.entry((part, key)).or_default().push(i);
                }
            }
        }
        Index { series }
    }

    /// As [`pick`] of part `part`'s series, by lookup: a member's labels are its part's
    /// (every member of a part is of one built-in).
    fn pick(
        &self,
        answer: &SeriesOutcome,
        part: usize,
        labels: &[(&'static str, String)],
    ) -> Option<QueryOutcome> {
        let SeriesOutcome::Samples(samples) = answer else {
            return pick(answer, labels);
        };
        let key: Vec<&str> = labels.iter().map(|(_, v)| v.as_str()).collect();
        Some(match self.series.get(&(part, key)).map(Vec::as_slice) {
            None | Some([]) => QueryOutcome::NoData,
            Some([one]) => samples
                .get(*one)
                .map_or(QueryOutcome::NoData, |s| s.value.clone()),
            Some(more) => QueryOutcome::SeveralSeries(more.len()),
        })
    }
}

/// A query in flight and what it answers.
enum Sent {
    Single(usize, QueryOutcome),
    /// Grouped query `query`'s answer: the whole query's, or (after it was refused) one
    /// part's, sent alone.
    Grouped {
        query: usize,
        part: Option<usize>,
        answer: SeriesOutcome,
    },
    /// A rollout's own query asked after its grouped one was refused.
    Fallback(Vec<usize>, QueryOutcome),
}

/// [`answers`]' state between two answers.
struct Flight<'a> {
    /// Answers to yield.
    ready: VecDeque<(usize, QueryOutcome)>,
    /// Queries not sent yet.
    waiting: VecDeque<BoxFuture<'a, Sent>>,
    flying: FuturesUnordered<BoxFuture<'a, Sent>>,
    /// The instants each query answers.
    answered_by: Vec<Vec<usize>>,
}

/// Sends `plan`'s queries through `provider`, at most `concurrency` at once, and yields each
/// instant's answer (its index in [`Plan::sources`]) as soon as the query it comes from is
/// answered: a slow query delays only the instants it answers.
pub fn answers<'a>(
    provider: &'a dyn MetricsProvider,
    plan: &'a Plan,
    concurrency: usize,
) -> impl Stream<Item = (usize, QueryOutcome)> + 'a {
    let mut flight = Flight {
        ready: VecDeque::new(),
        waiting: VecDeque::new(),
        flying: FuturesUnordered::new(),
        answered_by: vec![Vec::new(); plan.queries.len()],
    };
    for (n, s) in plan.sources.iter().enumerate() {
        match s {
            Source::NotRendered(reason) => flight
                .ready
                .push_back((n, QueryOutcome::QueryError(reason.clone()))),
            Source::Single(q) | Source::Grouped { query: q, .. } => {
                if let Some(list) = flight.answered_by.get_mut(*q) {
                    list.push(n);
                }
            }
        }
    }
    for (n, q) in plan.queries.iter().enumerate() {
        let sent: BoxFuture<'a, Sent> = match q {
            Query::Single(p) => Box::pin(async move { Sent::Single(n, provider.query(p).await) }),
            Query::Grouped { text, .. } => Box::pin(async move {
                Sent::Grouped {
                    query: n,
                    part: None,
                    answer: provider.query_series(text).await,
                }
            }),
        };
        flight.waiting.push_back(sent);
    }
    futures::stream::unfold(flight, move |mut f| async move {
        loop {
            if let Some(next) = f.ready.pop_front() {
                return Some((next, f));
            }
            while f.flying.len() < concurrency.max(1) {
                match f.waiting.pop_front() {
                    Some(sent) => f.flying.push(sent),
                    None => break,
                }
            }
            match f.flying.next().await? {
                Sent::Single(q, outcome) => {
                    for n in f.answered_by.get(q).into_iter().flatten() {
                        f.ready.push_back((*n, outcome.clone()));
                    }
                }
                Sent::Grouped {
                    query,
                    part,
                    answer,
                } => {
                    let parts = match plan.queries.get(query) {
                        Some(Query::Grouped { parts, .. }) => parts.as_slice(),
                        Some(Query::Single(_)) | None => &[],
                    };
                    if part.is_none()
                        && parts.len() > 1
                        && matches!(answer, SeriesOutcome::QueryError(_))
                    {
                        // Refused whole: each part alone, before any rollout asks its own.
                        for (p, text) in parts.iter().enumerate() {
                            f.waiting.push_back(Box::pin(async move {
                                Sent::Grouped {
                                    query,
                                    part: Some(p),
                                    answer: provider.query_series(text).await,
                                }
                            }));
                        }
                        continue;
                    }
                    let members = grouped_members(plan, f.answered_by.get(query), part);
                    let alone = part.or(if parts.len() > 1 { None } else { Some(0) });
                    let index = Index::of(&answer, &members, alone);
                    let mut refused: BTreeMap<&'a str, Vec<usize>> = BTreeMap::new();
                    for m in members {
                        match index.pick(&answer, m.part, m.labels) {
                            Some(outcome) => f.ready.push_back((m.instant, outcome)),
                            None => refused.entry(m.own).or_default().push(m.instant),
                        }
                    }
                    for (own, instants) in refused {
                        f.waiting.push_back(Box::pin(async move {
                            Sent::Fallback(instants, provider.query(own).await)
                        }));
                    }
                }
                Sent::Fallback(instants, outcome) => {
                    f.ready
                        .extend(instants.into_iter().map(|n| (n, outcome.clone())));
                }
            }
        }
    })
}

/// An instant a grouped query answers, as [`Source::Grouped`] has it.
struct Answered<'a> {
    instant: usize,
    part: usize,
    labels: &'a [(&'static str, String)],
    own: &'a str,
}

/// The grouped instants `answered` (a query's) that `part` answers (every part: `None`).
fn grouped_members<'a>(
    plan: &'a Plan,
    answered: Option<&Vec<usize>>,
    part: Option<usize>,
) -> Vec<Answered<'a>> {
    answered
        .into_iter()
        .flatten()
        .filter_map(|n| match plan.sources.get(*n) {
            Some(Source::Grouped {
                part: p,
                labels,
                own,
                ..
            }) if part.is_none_or(|only| only == *p) => Some(Answered {
                instant: *n,
                part: *p,
                labels,
                own,
            }),
            Some(Source::Grouped { .. } | Source::NotRendered(_) | Source::Single(_)) | None => {
                None
            }
        })
        .collect()
}

/// Every instant's answer, in order (the whole batch at once; [`answers`] yields them as
/// they come).
pub async fn answer_all(
    provider: &dyn MetricsProvider,
    plan: &Plan,
    concurrency: usize,
) -> Vec<QueryOutcome> {
    let mut out: Vec<QueryOutcome> = vec![QueryOutcome::NoData; plan.sources.len()];
    let mut stream = std::pin::pin!(answers(provider, plan, concurrency));
    while let Some((n, outcome)) = stream.next().await {
        if let Some(slot) = out.get_mut(n) {
            *slot = outcome;
        }
    }
    out
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
