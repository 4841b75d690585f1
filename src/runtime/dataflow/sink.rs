//! The sink operator: formats rows onto the job's prepared output (a shared temporary file, or
//! standard output on worker 0).

use super::{Cb, Ctx, Packet, S};
use crate::connectors::{RowWriter, SinkTarget};
use crate::runtime::RunError;
use crate::runtime::physical::{PhysNode, PhysOp};
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline};
use timely::dataflow::operators::Operator;

pub(super) fn sink_op<'s>(
    input: S<'s>,
    i: usize,
    node: &PhysNode,
    sink: usize,
    ctx: &Ctx,
) -> S<'s> {
    let PhysOp::Sink { spec, .. } = &node.op else {
        return input;
    };
    let ctx = ctx.clone();
    let mut place = spec.path.clone().unwrap_or_else(|| "<stdout>".to_string());
    // Standard output and a one-writer file are written by the first worker that runs the sink.
    let writer_index = ctx
        .placed
        .get(i)
        .and_then(|w| w.first())
        .copied()
        .unwrap_or(0);
    let mut writer: Option<Box<dyn RowWriter>> = None;
    let mut target = SinkTarget::File;
    match ctx.job.registry.sink(&spec.connector) {
        None => ctx.shared.fail(RunError::Plan(format!(
            "unknown sink connector `{}`",
            spec.connector
        ))),
        Some(conn) => {
            target = conn.target(spec);
            if target == SinkTarget::Transaction {
                place = format!("the {} sink at {}", spec.connector, spec.origin);
                if ctx.index == writer_index {
                    let token = ctx.job.sink_tokens.get(sink).cloned().flatten();
                    match token.map(|t| conn.load(spec, &node.row, &t)) {
                        Some(Ok(w)) => writer = Some(w),
                        Some(Err(e)) => ctx.shared.fail(RunError::Output {
                            path: e.place,
                            reason: e.reason,
                        }),
                        None => ctx.shared.fail(RunError::Output {
                            path: spec.origin.clone(),
                            reason: "its transaction was not opened".into(),
                        }),
                    }
                }
            }
            let out: Option<Result<Box<dyn std::io::Write + Send>, String>> = match target {
                SinkTarget::Transaction => None,
                SinkTarget::Stdout => {
                    (ctx.index == writer_index).then(|| Ok(Box::new(std::io::stdout()) as Box<_>))
                }
                SinkTarget::File | SinkTarget::OneFile => {
                    (target == SinkTarget::File || ctx.index == writer_index).then(|| {
                        match ctx.job.sink_files.get(sink).and_then(|f| f.as_ref()) {
                            None => Err("output was not prepared".to_string()),
                            Some(f) => Ok(Box::new(f.clone()) as Box<dyn std::io::Write + Send>),
                        }
                    })
                }
            };
            // A file's header was written when it was prepared; standard output and a
            // one-writer file are written by the sink's first worker alone, which writes the
            // header.
            let first = target != SinkTarget::File && ctx.index == writer_index;
            match out {
                None => {}
                Some(Err(reason)) => ctx.shared.fail(RunError::Output {
                    path: place.clone(),
                    reason,
                }),
                Some(Ok(out)) => match conn.writer(spec, &node.row, out, first) {
                    Ok(w) => writer = Some(w),
                    Err(e) => ctx.shared.fail(RunError::Output {
                        path: place.clone(),
                        reason: e.reason,
                    }),
                },
            }
        }
    }
    // A file every worker appends to keeps its rows on their worker: a pipeline edge (timely
    // neither routes nor buffers the packets). Standard output and a one-writer file take every
    // row on the writer's worker.
    let writing = Writing {
        writer,
        place,
        i,
        ctx,
    };
    if target == SinkTarget::File {
        writing.attach(input, Pipeline, &node.name)
    } else {
        let dest = writer_index as u64;
        writing.attach(input, Exchange::new(move |_p: &Packet| dest), &node.name)
    }
}

/// A sink's state on one worker: its writer (if this worker writes) and where it writes.
struct Writing {
    writer: Option<Box<dyn RowWriter>>,
    place: String,
    i: usize,
    ctx: Ctx,
}

impl Writing {
    /// The sink operator over `input`, its packets delivered by `pact`.
    fn attach<'s, P>(self, input: S<'s>, pact: P, name: &str) -> S<'s>
    where
        P: ParallelizationContract<u64, Vec<Packet>>,
    {
        let Writing {
            mut writer,
            place,
            i,
            ctx,
        } = self;
        input.unary_frontier::<Cb, _, _, _>(pact, name, move |_cap, _info| {
            move |(input, frontier), _output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !ctx.shared.aborted()
                            && let Some(w) = writer.as_mut()
                        {
                            if let Err(e) = w.write_batch(&p.batch) {
                                ctx.shared.fail(RunError::Output {
                                    path: place.clone(),
                                    reason: format!("write error: {e}"),
                                });
                            }
                            let n = p.batch.rows as u64;
                            ctx.shared.nodes[i].add(n, n);
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                if frontier.frontier().is_empty()
                    && let Some(mut w) = writer.take()
                    && !ctx.shared.aborted()
                    && let Err(e) = w.finish()
                {
                    ctx.shared.fail(RunError::Output {
                        path: place.clone(),
                        reason: format!("write error: {e}"),
                    });
                }
            }
        })
    }
}
