//! Sharing of repeated subexpressions in a `fn` body (common subexpression elimination on HIR),
//! run on each body once it is checked, before it is inlined anywhere. `fn g(x) = f(x) + f(x)`
//! inlines `f` twice; sharing turns the body into `let t = f(x) in t + t`, so a chain of such
//! functions grows linearly instead of doubling at each level (issue 17, item 3).
//!
//! A repeated subexpression `A … B` (equal up to spans and the numbering of the locals it binds)
//! is bound once, by a `Let` placed at the closest node `L` enclosing all its occurrences, only if
//! that changes neither results nor which row error is raised:
//! - the first occurrence `A` (in evaluation order) is always evaluated when `L` is — not inside
//!   one branch of an `if`, nor on the right of `&&`, `||`, `??`; later ones may be anywhere;
//! - nothing that can fail is evaluated inside `L` before `A`, or `A` itself cannot fail (so
//!   evaluating `A` first raises the same error, at the same row, as before);
//! - every local `A` reads is bound outside `L`.
//!
//! Expressions are pure, so an equal subexpression has the same value (or the same error). Where
//! these conditions do not hold nothing is shared, and the inlining cap (E0028) still applies.
//!
//! A body's calls of `fn`s are not inlined yet (see `check::inline`): a call is its `Let`s of the
//! arguments around a leaf, which compares equal to another leaf of the same function whose
//! arguments are equal, weighs as much as the callee's inlined body, reads the argument locals and
//! can fail if the callee can. So two equal calls are shared as a whole, as if inlined.

use super::cx::{Body, Call};
use super::hir::{BinOp, Expr, ExprKind, UnOp};
use super::inline::leaf;
use crate::stdlib::Builtin;
use crate::types::{Scalar, Type, Value};
use std::collections::HashMap;

/// At most this many rounds of sharing per body (each re-indexes the body; a round makes every
/// share whose region is apart from the others').
const MAX_ROUNDS: usize = 64;
/// At most this many repeated subexpressions are examined per round.
const MAX_TRIES: usize = 64;

/// Shares the repeated subexpressions of a body whose parameters are locals `0..params` and
/// whose call leaves are `calls`, then renumbers the locals it binds densely from `params` (the
/// copies that sharing removed leave gaps; without this, each level of a doubling chain would
/// double the numbers) and its calls in order (dropping those of removed copies).
pub fn share(mut body: Expr, params: usize, calls: Vec<Call>) -> Body {
    let mut next_local = super::expr::locals_used(&body).max(params);
    for _ in 0..MAX_ROUNDS {
        let ix = Index::build(&body, &calls);
        let (shares, more) = ix.find();
        for (lca, occurrences) in &shares {
            body = ix.rewrite(body, *lca, occurrences, &mut next_local);
        }
        if shares.is_empty() || !more {
            break;
        }
    }
    let mut r = Renumber {
        map: HashMap::new(),
        next: params,
        old: &calls,
        calls: Vec::new(),
    };
    r.visit(&mut body);
    let (locals, calls) = (r.next, r.calls);
    Body {
        expr: body,
        calls,
        locals,
    }
}

/// Gives the locals bound in a body the numbers `next..` in binding order (a `Let`'s value
/// first), and its call leaves new calls in order.
struct Renumber<'c> {
    /// Bound local → its new number, where it is in scope.
    map: HashMap<usize, usize>,
    next: usize,
    old: &'c [Call],
    calls: Vec<Call>,
}

impl Renumber<'_> {
    fn visit(&mut self, e: &mut Expr) {
        if let Some(i) = leaf(e) {
            if let Some(c) = self.old.get(i) {
                let args = c.args.iter().map(|a| *self.map.get(a).unwrap_or(a));
                self.calls.push(Call {
                    callee: c.callee.clone(),
                    args: args.collect(),
                });
                e.kind = ExprKind::Local(super::cx::CALL_BASE + self.calls.len() - 1);
            }
            return;
        }
        match &mut e.kind {
            ExprKind::Local(l) => {
                if let Some(n) = self.map.get(l) {
                    *l = *n;
                }
            }
            ExprKind::Let { local, value, body } => {
                self.visit(value);
                let n = self.next;
                self.next += 1;
                let saved = self.map.insert(*local, n);
                let old = std::mem::replace(local, n);
                self.visit(body);
                match saved {
                    Some(s) => self.map.insert(old, s),
                    None => self.map.remove(&old),
                };
            }
            _ => children_mut(e).into_iter().for_each(|c| self.visit(c)),
        }
    }
}

/// One node of the indexed tree, in pre-order (= evaluation order of the first step of each).
struct Node {
    parent: Option<usize>,
    /// Which child of the parent this is (`Expr::children` order).
    slot: usize,
    depth: usize,
    /// Equal ids: equal expressions (up to spans and local numbering).
    id: u32,
    /// Nodes in this subtree (its pre-order range is `i..i + size`).
    size: usize,
    /// Nodes of this subtree with the calls in it inlined.
    weight: usize,
    /// Some node of this subtree can raise a row error.
    fallible: bool,
    /// Whether the parent always evaluates this child when it is evaluated.
    unconditional: bool,
    /// The locals this node reads: a `Local`'s, or the arguments of a call leaf.
    reads: Vec<usize>,
}

struct Index {
    nodes: Vec<Node>,
    /// Where each bound local is bound (pre-order index of its `Let`).
    binder: HashMap<usize, usize>,
}

impl Index {
    fn build(e: &Expr, calls: &[Call]) -> Index {
        let mut b = Builder {
            calls,
            nodes: Vec::new(),
            binder: HashMap::new(),
            ids: HashMap::new(),
            local_ids: HashMap::new(),
        };
        b.visit(e, None, 0, 0, true);
        Index {
            nodes: b.nodes,
            binder: b.binder,
        }
    }

    /// The subexpressions to share, each as where to bind it and its occurrences (first one
    /// first), their regions (the subtrees of the binding places) apart; and whether some other
    /// one could be shared once these are (its region overlaps theirs).
    fn find(&self) -> (Vec<(usize, Vec<usize>)>, bool) {
        let mut shares: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut more = false;
        let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.weight >= 2 {
                groups.entry(n.id).or_default().push(i);
            }
        }
        let mut repeated: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() >= 2).collect();
        // Largest first (a repeated node's parts repeat too); ties by position, for determinism.
        repeated.sort_by_key(|g| (std::cmp::Reverse(self.nodes[g[0]].weight), g[0]));
        // The subtrees this round's shares replace by their local.
        let mut removed: Vec<(usize, usize)> = Vec::new();
        for group in repeated.into_iter().take(MAX_TRIES) {
            let live = group
                .iter()
                .filter(|&&o| !removed.iter().any(|&(s, e)| s <= o && o < e))
                .count();
            if live < group.len() {
                // Partly inside what this round replaces: look again next round if it repeats.
                more |= live >= 2;
                continue;
            }
            let mut pending = vec![group];
            while let Some(g) = pending.pop() {
                let lca = self.lca(&g);
                if self.can_share(lca, g[0]) {
                    let end = lca + self.nodes[lca].size;
                    if shares
                        .iter()
                        .all(|(l, _)| end <= *l || *l + self.nodes[*l].size <= lca)
                    {
                        removed.extend(g[1..].iter().map(|&o| (o, o + self.nodes[o].size)));
                        shares.push((lca, g));
                    } else {
                        more = true;
                    }
                    continue;
                }
                // Try the occurrences under each child of `lca` on their own.
                let mut by_child: Vec<(usize, Vec<usize>)> = Vec::new();
                for &o in &g {
                    let c = self.child_toward(lca, o);
                    match by_child.iter_mut().find(|(k, _)| *k == c) {
                        Some((_, v)) => v.push(o),
                        None => by_child.push((c, vec![o])),
                    }
                }
                pending.extend(
                    by_child
                        .into_iter()
                        .map(|(_, v)| v)
                        .filter(|v| v.len() >= 2),
                );
            }
        }
        (shares, more)
    }

    fn lca(&self, group: &[usize]) -> usize {
        let mut a = group[0];
        for &o in &group[1..] {
            let mut b = o;
            while self.nodes[a].depth > self.nodes[b].depth {
                a = self.parent(a);
            }
            while self.nodes[b].depth > self.nodes[a].depth {
                b = self.parent(b);
            }
            while a != b {
                a = self.parent(a);
                b = self.parent(b);
            }
        }
        a
    }

    fn parent(&self, i: usize) -> usize {
        self.nodes[i].parent.unwrap_or(0)
    }

    /// The child of `anc` on the way down to its descendant `d`.
    fn child_toward(&self, anc: usize, mut d: usize) -> usize {
        while self.nodes[d].parent != Some(anc) {
            d = self.parent(d);
        }
        d
    }

    /// Whether `first`, a proper descendant of `lca`, may be evaluated once, before `lca`.
    fn can_share(&self, lca: usize, first: usize) -> bool {
        if first == lca {
            return false;
        }
        let first_fallible = self.nodes[first].fallible;
        let mut at = first;
        while at != lca {
            let n = &self.nodes[at];
            if !n.unconditional {
                return false;
            }
            let p = self.parent(at);
            if first_fallible && self.earlier_siblings_fallible(p, n.slot) {
                return false;
            }
            at = p;
        }
        // Every local read inside `first` and bound outside it is bound above `lca`, and `lca`
        // lies in that `Let`'s body.
        let end = first + self.nodes[first].size;
        for l in self.nodes[first..end].iter().flat_map(|n| &n.reads) {
            let Some(&b) = self.binder.get(l) else {
                continue; // a parameter: bound outside the whole body
            };
            if (first..end).contains(&b) {
                continue;
            }
            if b >= lca || !self.in_body_of(b, lca) {
                return false;
            }
        }
        true
    }

    fn earlier_siblings_fallible(&self, parent: usize, slot: usize) -> bool {
        let mut c = parent + 1;
        for _ in 0..slot {
            if self.nodes[c].fallible {
                return true;
            }
            c += self.nodes[c].size;
        }
        false
    }

    /// Whether `d` is inside the body (not the value) of the `Let` at `b`.
    fn in_body_of(&self, b: usize, d: usize) -> bool {
        let end = b + self.nodes[b].size;
        if !(b < d && d < end) {
            return false;
        }
        self.nodes[self.child_toward(b, d)].slot == 1
    }

    /// The pre-order path (child slots) from the root to `i`.
    fn path(&self, mut i: usize, root: usize) -> Vec<usize> {
        let mut p = Vec::new();
        while i != root {
            p.push(self.nodes[i].slot);
            i = self.parent(i);
        }
        p.reverse();
        p
    }

    fn rewrite(&self, mut body: Expr, lca: usize, occ: &[usize], next_local: &mut usize) -> Expr {
        let local = *next_local;
        let Some(site) = child_at(&mut body, &self.path(lca, 0)) else {
            return body;
        };
        let mut value = None;
        for &o in occ {
            let Some(target) = child_at(site, &self.path(o, lca)) else {
                continue;
            };
            let read = Expr::new(ExprKind::Local(local), target.ty, target.span);
            let old = std::mem::replace(target, read);
            value.get_or_insert(old);
        }
        let Some(value) = value else {
            return body;
        };
        *next_local += 1;
        let (ty, span) = (site.ty, site.span);
        let inner = std::mem::replace(site, Expr::new(ExprKind::Lit(Value::Null), ty, span));
        *site = Expr::new(
            ExprKind::Let {
                local,
                value: Box::new(value),
                body: Box::new(inner),
            },
            ty,
            span,
        );
        body
    }
}

/// The node at `path` below `e` (`None` only if the path does not fit the tree).
fn child_at<'e>(mut e: &'e mut Expr, path: &[usize]) -> Option<&'e mut Expr> {
    for &slot in path {
        e = children_mut(e).into_iter().nth(slot)?;
    }
    Some(e)
}

fn children_mut(e: &mut Expr) -> Vec<&mut Expr> {
    match &mut e.kind {
        ExprKind::Lit(_) | ExprKind::Field(_) | ExprKind::Local(_) => vec![],
        ExprKind::Let { value, body, .. } => vec![value, body],
        ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::IsNull(a) => vec![a],
        ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) => vec![a, b],
        ExprKind::If(c, t, f) => vec![c, t, f],
        ExprKind::Call(_, args) => args.iter_mut().collect(),
    }
}

struct Builder<'c> {
    calls: &'c [Call],
    nodes: Vec<Node>,
    binder: HashMap<usize, usize>,
    /// Hash-consing: a node's operator, type and child ids → its id.
    ids: HashMap<Key, u32>,
    /// A bound local is named by the id of the value it is bound to (so two inlinings of one call
    /// compare equal whatever numbers their locals got).
    local_ids: HashMap<usize, u32>,
}

/// What identifies a node, given the ids of its children.
#[derive(PartialEq, Eq, Hash)]
enum Key {
    Lit(String, Type),
    Field(usize, Type),
    /// A local bound in the body, by the id of its value.
    Bound(u32, Type),
    /// A parameter.
    Param(usize, Type),
    /// A call leaf: the callee's body (by address) and its arguments' locals, each by the id of its
    /// value (`Some`) or as a parameter.
    Call(usize, Vec<Result<u32, usize>>, Type),
    Node(Op, Type, Vec<u32>),
}

#[derive(PartialEq, Eq, Hash)]
enum Op {
    Let,
    Unary(UnOp),
    Binary(BinOp),
    Cast(Scalar),
    IsNull,
    Coalesce,
    If,
    Call(Builtin),
}

impl Builder<'_> {
    /// Indexes `e` and its subtree; returns its id.
    fn visit(
        &mut self,
        e: &Expr,
        parent: Option<usize>,
        slot: usize,
        depth: usize,
        unconditional: bool,
    ) -> u32 {
        let me = self.nodes.len();
        self.nodes.push(Node {
            parent,
            slot,
            depth,
            id: 0,
            size: 1,
            weight: 1,
            fallible: own_fallible(e),
            unconditional,
            reads: Vec::new(),
        });
        let ty = e.ty;
        if let Some(call) = leaf(e).and_then(|i| self.calls.get(i)) {
            let args = call
                .args
                .iter()
                .map(|a| self.local_ids.get(a).copied().ok_or(*a));
            let key = Key::Call(
                std::rc::Rc::as_ptr(&call.callee.body) as usize,
                args.collect(),
                ty,
            );
            let n = &mut self.nodes[me];
            n.weight = call.callee.size;
            n.fallible = call.callee.fallible;
            n.reads = call.args.clone();
            return self.intern(me, key);
        }
        let op = match &e.kind {
            ExprKind::Lit(v) => return self.intern(me, Key::Lit(v.canonical(), ty)),
            ExprKind::Field(i) => return self.intern(me, Key::Field(*i, ty)),
            ExprKind::Local(l) => {
                self.nodes[me].reads = vec![*l];
                let key = match self.local_ids.get(l) {
                    Some(v) => Key::Bound(*v, ty),
                    None => Key::Param(*l, ty),
                };
                return self.intern(me, key);
            }
            ExprKind::Let { local, .. } => {
                self.binder.insert(*local, me);
                Op::Let
            }
            ExprKind::Unary(op, _) => Op::Unary(*op),
            ExprKind::Binary(op, _, _) => Op::Binary(*op),
            ExprKind::Cast(_, s) => Op::Cast(*s),
            ExprKind::IsNull(_) => Op::IsNull,
            ExprKind::Coalesce(_, _) => Op::Coalesce,
            ExprKind::If(_, _, _) => Op::If,
            ExprKind::Call(b, _) => Op::Call(*b),
        };
        let mut kids = Vec::with_capacity(3);
        let mut fallible = self.nodes[me].fallible;
        let mut weight = 1;
        for (slot, child) in e.children().enumerate() {
            let at = self.nodes.len();
            let id = self.visit(child, Some(me), slot, depth + 1, always(e, slot));
            fallible |= self.nodes[at].fallible;
            weight += self.nodes[at].weight;
            if let (ExprKind::Let { local, .. }, 0) = (&e.kind, slot) {
                self.local_ids.insert(*local, id);
            }
            kids.push(id);
        }
        let id = self.intern(me, Key::Node(op, ty, kids));
        let size = self.nodes.len() - me;
        let n = &mut self.nodes[me];
        n.size = size;
        n.weight = weight;
        n.fallible = fallible;
        id
    }

    /// Gives node `me` the id of `key`.
    fn intern(&mut self, me: usize, key: Key) -> u32 {
        let next = self.ids.len() as u32;
        let id = *self.ids.entry(key).or_insert(next);
        self.nodes[me].id = id;
        id
    }
}

/// Whether evaluating `e` always evaluates its child number `slot`.
fn always(e: &Expr, slot: usize) -> bool {
    match &e.kind {
        ExprKind::If(..)
        | ExprKind::Coalesce(..)
        | ExprKind::Binary(BinOp::And | BinOp::Or, ..) => slot == 0,
        _ => true,
    }
}

/// Whether the operation of `e` itself (not its operands) can raise a row error.
pub fn own_fallible(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Unary(UnOp::Neg, _) => e.ty.scalar == Scalar::Int,
        ExprKind::Binary(BinOp::Add | BinOp::Sub | BinOp::Mul, _, _) => e.ty.scalar == Scalar::Int,
        ExprKind::Binary(BinOp::Div | BinOp::Rem, _, _) | ExprKind::Call(..) => true,
        _ => false,
    }
}
