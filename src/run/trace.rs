//! `--trace FILE`: the run as Chrome trace events, so it opens as a timeline in
//! Perfetto (ui.perfetto.dev) or chrome://tracing. Each call is a complete event
//! (`ph: X`) on the lane of the first free slot, so parallel calls stack up.

use std::time::{Duration, Instant};

use serde_json::json;

use super::resolve::Status;

#[derive(Default)]
pub(super) struct Trace {
    events: Vec<serde_json::Value>,
    /// When each lane becomes free, in microseconds since the start.
    lanes: Vec<u128>,
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
        let ts = started.saturating_duration_since(origin).as_micros();
        let dur = duration.as_micros();
        let lane = match self.lanes.iter().position(|free| *free <= ts) {
            Some(lane) => lane,
            None => {
                self.lanes.push(0);
                self.lanes.len() - 1
            }
        };
        if let Some(free) = self.lanes.get_mut(lane) {
            *free = ts + dur;
        }
        self.events.push(json!({
            "name": id.rsplit('/').next().unwrap_or(id),
            "cat": status.as_str(),
            "ph": "X",
            "ts": ts as u64,
            "dur": dur as u64,
            "pid": 1,
            "tid": lane + 1,
            "args": { "id": id, "status": status.as_str() },
        }));
    }

    /// The trace-event JSON document.
    pub fn to_json(&self) -> String {
        json!({ "traceEvents": self.events, "displayTimeUnit": "ms" }).to_string()
    }
}
