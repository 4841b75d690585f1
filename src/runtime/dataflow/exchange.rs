//! Moving batches to the workers that run the next stage, when it runs on other workers than
//! its input (`mode single(readers: R, processors: P)`: readers → processors; `@parallel(n)`:
//! onto and off the stage's `n` workers). Each sending worker deals its batches round-robin
//! over the receivers, starting at its own index so that the senders spread evenly; a batch
//! moves whole (inside a process as a pointer, across processes serialized), keeping its
//! [`Order`](super::Order) so that `limit` still sees input positions.

use super::{Cb, Ctx, Packet, S};
use std::sync::Arc;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Operator;

/// `input`, produced on some workers, delivered to the workers `to` (global indices).
pub(super) fn spread<'s>(input: S<'s>, to: Arc<Vec<usize>>, ctx: &Ctx) -> S<'s> {
    let mut next = ctx.index;
    let routed = input.unary::<Cb, _, _, _>(Pipeline, "deal", move |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for mut p in data.drain(..) {
                    p.route = to.get(next % to.len().max(1)).copied().unwrap_or(0) as u64;
                    next = next.wrapping_add(1);
                    session.give(p);
                }
            });
        }
    });
    routed.unary::<Cb, _, _, _>(
        Exchange::new(|p: &Packet| p.route),
        "exchange",
        |_cap, _info| {
            |input, output| {
                input.for_each(|cap, data| {
                    let mut session = output.session(&cap);
                    for p in data.drain(..) {
                        session.give(p);
                    }
                });
            }
        },
    )
}
