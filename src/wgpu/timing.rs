//! Timing with timestamp queries: under [`crate::Device::time_runs`] every compute pass that
//! [`WgpuBackend::run`] records writes begin and end timestamps, and a run's time is the span
//! from its first begin to its last end (wall clock where the device has no timestamps).

use crate::error::Result;

use super::context::{poisoned, WgpuBackend};

/// Compute passes one timed run may hold (two timestamps each).
const MAX_TIMED_PASSES: u32 = 64;

/// State of a timed run: every compute pass writes its begin and end timestamps.
pub(crate) struct Timing {
    query_set: wgpu::QuerySet,
    passes: u32,
    overflow: bool,
}

impl Timing {
    /// The timestamp writes of the next compute pass, or `None` when no run is being timed or
    /// the run has more passes than the query set holds (it then falls back to the wall clock).
    pub(crate) fn next_pass(timing: &mut Option<Timing>) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let t = timing.as_mut()?;
        if t.passes >= MAX_TIMED_PASSES {
            t.overflow = true;
            return None;
        }
        let i = t.passes;
        t.passes += 1;
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &t.query_set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        })
    }
}

impl WgpuBackend {
    /// True if the device has `Features::TIMESTAMP_QUERY`.
    pub(crate) fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Runs `f` `iters` times and returns each run's time: the span of its compute passes'
    /// timestamps where the device has them, else (or for a run without passes, or with more
    /// than the query set holds) the wall clock from the call to the end of its work.
    pub(crate) fn timed_runs(&self, f: &mut dyn FnMut() -> Result<()>, iters: usize) -> Result<Vec<f64>> {
        let queries = if self.has_timestamps() { Some(self.timestamp_queries()?) } else { None };
        let mut out = Vec::with_capacity(iters);
        self.wait()?;
        for _ in 0..iters {
            if let Some((query_set, _)) = &queries {
                *self.timing.lock().map_err(|_| poisoned("timing"))? =
                    Some(Timing { query_set: query_set.clone(), passes: 0, overflow: false });
            }
            let t0 = std::time::Instant::now();
            let r = f();
            let state = self.timing.lock().map_err(|_| poisoned("timing"))?.take();
            r?;
            self.wait()?;
            let wall = t0.elapsed().as_secs_f64();
            let timed = match (&queries, state) {
                (Some((_, resolve)), Some(state)) if state.passes > 0 && !state.overflow => self.pass_span(&state, resolve)?,
                _ => None,
            };
            out.push(timed.unwrap_or(wall));
        }
        Ok(out)
    }

    /// The query set of a timed run and the buffer its timestamps are resolved into.
    fn timestamp_queries(&self) -> Result<(wgpu::QuerySet, wgpu::Buffer)> {
        let count = 2 * MAX_TIMED_PASSES;
        let query_set = self.scoped("timestamp query set", || {
            Ok(self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("slimgemm timing"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }))
        })?;
        let resolve =
            self.create_buffer("slimgemm timestamps", count as u64 * 8, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC)?;
        Ok((query_set, resolve))
    }

    /// Seconds from the first pass's begin to the last pass's end of a finished run, `None`
    /// if the timestamps are not increasing.
    fn pass_span(&self, state: &Timing, resolve: &wgpu::Buffer) -> Result<Option<f64>> {
        let n = state.passes * 2;
        self.scoped("resolve timestamps", || {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("slimgemm resolve") });
            enc.resolve_query_set(&state.query_set, 0..n, resolve, 0);
            self.queue.submit(Some(enc.finish()));
            Ok(())
        })?;
        let bytes = self.read_buffer(resolve, n as u64 * 8)?;
        let ts: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let begin = ts.iter().step_by(2).copied().min().unwrap_or(0);
        let end = ts.iter().skip(1).step_by(2).copied().max().unwrap_or(0);
        let period = self.queue.get_timestamp_period() as f64;
        Ok((end > begin).then(|| (end - begin) as f64 * period * 1e-9))
    }
}
