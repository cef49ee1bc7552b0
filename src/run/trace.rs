//! `--trace FILE`: the run as Chrome trace events, so it opens as a timeline in
//! Perfetto (ui.perfetto.dev) or chrome://tracing. Each call is a complete event
//! (`ph: X`) on a lane of its own while it runs, so parallel calls stack up.
//!
//! The run only records each call's id and times; lanes are assigned and the JSON
//! is built at the end. Assigning lanes as calls finished took a scan of every lane
//! per call, on the scheduler's thread: on a 10,000-call fan-out, 10,000 lanes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::resolve::Status;

#[derive(Default)]
pub(super) struct Trace {
    calls: Vec<TracedCall>,
}

/// One call as the trace shows it; times in microseconds since the run started.
struct TracedCall {
    id: String,
    start: u64,
    duration: u64,
    status: Status,
}

impl Trace {
    /// Records a call of `id` that started at `started` and took `duration`.
    pub fn push(
        &mut self,
        id: &str,
        origin: Instant,
        started: Instant,
        duration: Duration,
        status: Status,
    ) {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.calls.push(TracedCall {
            id: id.to_string(),
            start: micros(started.saturating_duration_since(origin)),
            duration: micros(duration),
            status,
        });
    }

    /// The trace-event JSON document.
    pub fn to_json(&self) -> String {
        let lanes = lanes(&self.calls);
        let events: Vec<Event<'_>> = self
            .calls
            .iter()
            .zip(lanes)
            .map(|(call, lane)| Event {
                name: call.id.rsplit('/').next().unwrap_or(&call.id),
                cat: call.status.as_str(),
                ph: "X",
                ts: call.start,
                dur: call.duration,
                pid: 1,
                tid: lane + 1,
                args: Args {
                    id: &call.id,
                    status: call.status.as_str(),
                },
            })
            .collect();
        let document = Document {
            trace_events: events,
            display_time_unit: "ms",
        };
        // Plain structs of strings and numbers: serializing them cannot fail.
        serde_json::to_string(&document).unwrap_or_default()
    }
}

/// A lane for each call (in `calls`' order) such that calls on one lane never overlap
/// and there are as many lanes as the most calls running at once: the calls taken in
/// order of their start, each on the lowest lane free by then.
fn lanes(calls: &[TracedCall]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..calls.len()).collect();
    order.sort_by_key(|&i| calls[i].start);
    let mut lane_of = vec![0; calls.len()];
    // Lanes in use, by the time they become free; lanes free again, lowest first.
    let mut busy: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut free: BinaryHeap<Reverse<usize>> = BinaryHeap::new();
    let mut opened = 0;
    for i in order {
        let call = &calls[i];
        while let Some(&Reverse((end, lane))) = busy.peek() {
            if end > call.start {
                break;
            }
            busy.pop();
            free.push(Reverse(lane));
        }
        let lane = free.pop().map_or_else(
            || {
                opened += 1;
                opened - 1
            },
            |Reverse(lane)| lane,
        );
        busy.push(Reverse((call.start.saturating_add(call.duration), lane)));
        lane_of[i] = lane;
    }
    lane_of
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    trace_events: Vec<Event<'a>>,
    display_time_unit: &'static str,
}

#[derive(Serialize)]
struct Event<'a> {
    name: &'a str,
    cat: &'static str,
    ph: &'static str,
    ts: u64,
    dur: u64,
    pid: u32,
    tid: usize,
    args: Args<'a>,
}

#[derive(Serialize)]
struct Args<'a> {
    id: &'a str,
    status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(start, duration)` in milliseconds of every call, pushed in the order given
    /// (calls finish, and are pushed, in no particular order of their starts).
    fn lanes_of(calls: &[(u64, u64)]) -> Vec<(u64, u64, u64)> {
        let origin = Instant::now();
        let mut trace = Trace::default();
        for (i, &(start, duration)) in calls.iter().enumerate() {
            trace.push(
                &format!("flat/leaf[{i}]"),
                origin,
                origin + Duration::from_millis(start),
                Duration::from_millis(duration),
                Status::Complete,
            );
        }
        let document: serde_json::Value = serde_json::from_str(&trace.to_json()).unwrap();
        assert_eq!(document["displayTimeUnit"], "ms");
        let events = document["traceEvents"].as_array().unwrap();
        assert_eq!(events.len(), calls.len());
        events
            .iter()
            .map(|event| {
                assert_eq!(event["ph"], "X");
                assert_eq!(event["cat"], "complete");
                assert!(event["name"].as_str().unwrap().starts_with("leaf["));
                let field = |key: &str| event[key].as_u64().unwrap();
                (field("ts"), field("dur"), field("tid"))
            })
            .collect()
    }

    #[test]
    fn calls_on_one_lane_never_overlap_and_lanes_are_as_few_as_calls_at_once() {
        // Pushed as they finish: the long call that started first comes last.
        let calls = [(10, 5), (16, 4), (0, 30), (20, 10), (31, 1), (5, 2)];
        let events = lanes_of(&calls);
        for (i, a) in events.iter().enumerate() {
            for b in &events[i + 1..] {
                let apart = a.0 + a.1 <= b.0 || b.0 + b.1 <= a.0;
                assert!(a.2 != b.2 || apart, "{a:?} and {b:?} overlap on one lane");
            }
        }
        // At most two calls run at once (0–30 with each of the others in turn).
        let lanes: std::collections::BTreeSet<u64> = events.iter().map(|e| e.2).collect();
        assert_eq!(lanes.into_iter().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_wide_fan_out_takes_a_lane_per_call_running_at_once() {
        // 3,000 calls all running at once, then 3,000 more after them.
        let calls: Vec<(u64, u64)> = (0..6_000)
            .map(|i| (if i % 2 == 0 { 0 } else { 100 }, 50))
            .collect();
        let events = lanes_of(&calls);
        let lanes: std::collections::BTreeSet<u64> = events.iter().map(|e| e.2).collect();
        assert_eq!(lanes.len(), 3_000);
    }
}
