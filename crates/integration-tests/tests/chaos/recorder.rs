//! The history a scenario records: operations of the workload's processes and the faults the
//! scenario injects, timed from the start of the run.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use strom_chaos::history::{Fault, History, Op, OpKind, Outcome};

/// A history shared by the workload tasks and the scenario.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    history: Arc<Mutex<History>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            history: Arc::new(Mutex::new(History::default())),
        }
    }

    /// Milliseconds since the run started.
    pub fn now(&self) -> u64 {
        self.ms(Instant::now())
    }

    /// `at` as milliseconds since the run started (0 for anything earlier).
    pub fn ms(&self, at: Instant) -> u64 {
        let elapsed = at.saturating_duration_since(self.start);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }

    /// Records an operation invoked at `invoked_ms` that completes now.
    pub fn op(&self, process: u32, invoked_ms: u64, outcome: Outcome, kind: OpKind) {
        let completed_ms = self.now();
        self.push(Op {
            process,
            invoked_ms,
            completed_ms,
            outcome,
            kind,
        });
    }

    pub fn push(&self, op: Op) {
        self.history.lock().unwrap().ops.push(op);
    }

    /// Records a fault of the whole cluster injected now; its index, for
    /// [`Recorder::healed`].
    pub fn fault(&self, name: impl Into<String>) -> usize {
        self.push_fault(name.into(), None)
    }

    /// Records a fault aimed at `partition` (e.g. killing its leader) injected now.
    pub fn fault_on(&self, partition: i32, name: impl Into<String>) -> usize {
        self.push_fault(name.into(), Some(partition))
    }

    fn push_fault(&self, name: String, partition: Option<i32>) -> usize {
        let at_ms = self.now();
        println!("{at_ms:>7} ms  fault: {name}");
        let mut history = self.history.lock().unwrap();
        history.faults.push(Fault {
            name,
            partition,
            at_ms,
            healed_ms: None,
        });
        history.faults.len() - 1
    }

    pub fn healed(&self, fault: usize) {
        let now = self.now();
        let mut history = self.history.lock().unwrap();
        println!("{now:>7} ms  healed: {}", history.faults[fault].name);
        history.faults[fault].healed_ms = Some(now);
    }

    pub fn history(&self) -> History {
        self.history.lock().unwrap().clone()
    }

    /// Acknowledged sends completed in `[from_ms, to_ms]`.
    pub fn acked_between(&self, from_ms: u64, to_ms: u64) -> Vec<Op> {
        self.history
            .lock()
            .unwrap()
            .ops
            .iter()
            .filter(|op| {
                op.outcome == Outcome::Ok
                    && matches!(op.kind, OpKind::Send { .. })
                    && (from_ms..=to_ms).contains(&op.completed_ms)
            })
            .cloned()
            .collect()
    }
}
