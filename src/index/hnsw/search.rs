//! The HNSW search machinery shared by building and querying: packed (similarity, node) keys,
//! the graph views, per-thread scratch space, the greedy descent, the beam search of one layer
//! and the neighbour-selection heuristic.

use super::*;

/// A similarity and a node packed into one integer, so the search heaps compare with one
/// instruction: greater means a higher similarity, then a lower node. The high half is the
/// similarity mapped to an order-preserving `u32` (it must not be NaN: see [`key`]), the low
/// half the complement of the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Scored(u64);

impl Scored {
    #[inline]
    pub(super) fn new(sim: f32, node: u32) -> Self {
        let bits = sim.to_bits();
        // Negative floats order backwards by bits: flip them all; positives just gain the top bit.
        let ordered = if bits >> 31 == 1 {
            !bits
        } else {
            bits | (1 << 31)
        };
        Scored((u64::from(ordered) << 32) | u64::from(!node))
    }

    #[inline]
    pub(super) fn sim(self) -> f32 {
        let ordered = (self.0 >> 32) as u32;
        f32::from_bits(if ordered >> 31 == 1 {
            ordered & !(1 << 31)
        } else {
            !ordered
        })
    }

    #[inline]
    pub(super) fn node(self) -> u32 {
        !(self.0 as u32)
    }
}

/// A similarity as the graph ranks it: NaN (a corrupt row) ranks below everything.
#[inline]
pub(super) fn key(sim: f32) -> f32 {
    if sim.is_nan() {
        f32::NEG_INFINITY
    } else {
        sim
    }
}

/// Level of catalog row `row`: `⌊-ln(u) / ln(m)⌋` for a `u` uniform in (0, 1] hashed from the
/// seed and the row, so levels depend neither on the thread scheduling nor on the memory order.
pub(super) fn draw_level(seed: u64, row: u32, m: usize) -> u8 {
    let u = unit_hash(seed ^ crate::rng::splitmix64(u64::from(row)));
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as u8
}

/// A hash of `x` mapped to (0, 1].
pub(super) fn unit_hash(x: u64) -> f64 {
    ((crate::rng::splitmix64(x) >> 11) + 1) as f64 / (1u64 << 53) as f64
}

/// Start of each node's first upper-layer block: the prefix sums of `level × (1 + m)`, with the
/// total at the end.
pub(super) fn upper_offsets(levels: &[u8], m: usize) -> Vec<usize> {
    let mut start = Vec::with_capacity(levels.len() + 1);
    let mut total = 0usize;
    for &level in levels {
        start.push(total);
        total += level as usize * (1 + m);
    }
    start.push(total);
    start
}

/// Where a node's neighbour list on a layer lives.
pub(super) trait Adjacency {
    /// The neighbours of `node` on `layer`, possibly copied into `buf`.
    fn neighbours<'a>(&'a self, node: u32, layer: usize, buf: &'a mut Vec<u32>) -> &'a [u32];

    /// Starts loading the layer-0 list of `node` into cache.
    fn prefetch(&self, node: u32);
}

/// The finished graph: plain arrays, read without copying.
pub(super) struct Graph<'a> {
    pub(super) m: usize,
    pub(super) layer0: &'a [u32],
    pub(super) upper: &'a [u32],
    pub(super) upper_start: &'a [usize],
}

impl Adjacency for Graph<'_> {
    #[inline(always)]
    fn neighbours<'a>(&'a self, node: u32, layer: usize, _: &'a mut Vec<u32>) -> &'a [u32] {
        let (block, cap) = if layer == 0 {
            let stride = 1 + 2 * self.m;
            (&self.layer0[node as usize * stride..][..stride], 2 * self.m)
        } else {
            let stride = 1 + self.m;
            let start = self.upper_start[node as usize] + (layer - 1) * stride;
            (&self.upper[start..][..stride], self.m)
        };
        let count = (block[0] as usize).min(cap);
        &block[1..1 + count]
    }

    #[inline(always)]
    fn prefetch(&self, node: u32) {
        let stride = 1 + 2 * self.m;
        crate::simd::prefetch(&self.layer0[node as usize * stride..][..stride]);
    }
}

/// The graph under construction: the same flat layout as [`Graph`], in atomics so that
/// searches read lists while other threads rewrite them. A list is only written under its
/// node's lock; readers do not lock: a list read mid-rewrite mixes old and new neighbours,
/// which are all real nodes, and costs at most a slightly worse path.
pub(super) struct BuildGraph {
    pub(super) m: usize,
    pub(super) layer0: Vec<AtomicU32>,
    pub(super) upper: Vec<AtomicU32>,
    pub(super) upper_start: Vec<usize>,
    pub(super) locks: Vec<Mutex<()>>,
}

impl BuildGraph {
    pub(super) fn block(&self, node: u32, layer: usize) -> (&[AtomicU32], usize) {
        if layer == 0 {
            let stride = 1 + 2 * self.m;
            (&self.layer0[node as usize * stride..][..stride], 2 * self.m)
        } else {
            let stride = 1 + self.m;
            let start = self.upper_start[node as usize] + (layer - 1) * stride;
            (&self.upper[start..][..stride], self.m)
        }
    }

    /// Replaces the list of `node` on `layer`; the caller holds the node's lock.
    pub(super) fn write(&self, node: u32, layer: usize, ids: &[u32]) {
        let (block, cap) = self.block(node, layer);
        debug_assert!(ids.len() <= cap);
        for (slot, &id) in block[1..].iter().zip(ids) {
            slot.store(id, AtomicOrdering::Relaxed);
        }
        block[0].store(ids.len() as u32, AtomicOrdering::Release);
    }

    pub(super) fn lock(&self, node: u32) -> MutexGuard<'_, ()> {
        // A poisoned lock only means another insert panicked; the lists are still valid.
        self.locks[node as usize]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Adjacency for BuildGraph {
    fn neighbours<'a>(&'a self, node: u32, layer: usize, buf: &'a mut Vec<u32>) -> &'a [u32] {
        let (block, cap) = self.block(node, layer);
        let count = (block[0].load(AtomicOrdering::Acquire) as usize).min(cap);
        buf.clear();
        buf.extend(
            block[1..1 + count]
                .iter()
                .map(|slot| slot.load(AtomicOrdering::Relaxed)),
        );
        buf
    }

    fn prefetch(&self, node: u32) {
        let stride = 1 + 2 * self.m;
        crate::simd::prefetch(&self.layer0[node as usize * stride..][..stride]);
    }
}

/// The similarities a search ranks nodes by: to a query, or to the node being inserted.
pub(super) trait Space {
    /// Similarity of `node` to the query.
    fn sim(&self, node: u32) -> f32;

    /// Starts loading the vector of `node` into cache.
    fn prefetch(&self, node: u32);
}

/// Similarity to a query vector.
pub(super) struct QuerySpace<'a> {
    pub(super) vectors: &'a [f32],
    pub(super) dim: usize,
    pub(super) query: &'a [f32],
    /// The groups, which a search looks up for every node it considers as a result.
    pub(super) group_start: &'a [u32],
    pub(super) group_rows: &'a [u32],
}

impl Space for QuerySpace<'_> {
    #[inline(always)]
    fn sim(&self, node: u32) -> f32 {
        crate::simd::dot(
            &self.vectors[node as usize * self.dim..][..self.dim],
            self.query,
        )
    }

    #[inline(always)]
    fn prefetch(&self, node: u32) {
        crate::simd::prefetch(&self.vectors[node as usize * self.dim..][..self.dim]);
        crate::simd::prefetch(&self.group_start[node as usize..][..2]);
        // Where the group's rows are when no earlier row has a duplicate: usually right.
        let guess = (node as usize).min(self.group_rows.len() - 1);
        crate::simd::prefetch(&self.group_rows[guess..][..1]);
    }
}

/// Similarity to the node being inserted.
pub(super) struct NodeSpace<'a> {
    pub(super) builder: &'a Builder<'a>,
    pub(super) node: u32,
}

impl Space for NodeSpace<'_> {
    #[inline(always)]
    fn sim(&self, other: u32) -> f32 {
        self.builder.pair(self.node, other)
    }

    #[inline(always)]
    fn prefetch(&self, other: u32) {
        self.builder.prefetch(other);
    }
}

/// Per-thread search state, reused across searches so that a query allocates nothing.
#[derive(Default)]
pub(super) struct Scratch {
    /// `stamps[node] == generation` marks `node` visited in the current search; bumping the
    /// generation forgets every visit at once (16 bits keep the array small enough for L2).
    pub(super) stamps: Vec<u16>,
    pub(super) generation: u16,
    /// Nodes to expand, best first.
    pub(super) candidates: BinaryHeap<Scored>,
    /// The best `ef` (allowed) nodes so far, worst on top.
    pub(super) results: BinaryHeap<Reverse<Scored>>,
    /// Neighbour lists copied out of the graph under construction.
    pub(super) buf: Vec<u32>,
    /// The unvisited neighbours of the node being expanded.
    pub(super) fresh: Vec<u32>,
}

impl Scratch {
    /// Starts a search over `n` nodes: nothing is visited.
    pub(super) fn start(&mut self, n: usize) {
        if self.stamps.len() < n {
            self.stamps.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
        self.candidates.clear();
        self.results.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch, or with a fresh one if it is in use (an `allow` that
/// itself searches an HNSW index).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Greedy walk on one upper layer: moves to the best neighbour until none is better.
pub(super) fn greedy(
    graph: &impl Adjacency,
    layer: usize,
    space: &impl Space,
    mut current: (f32, u32),
    buf: &mut Vec<u32>,
) -> (f32, u32) {
    loop {
        let mut moved = false;
        let neighbours = graph.neighbours(current.1, layer, buf);
        for &nb in neighbours {
            space.prefetch(nb);
        }
        for &nb in neighbours {
            let s = key(space.sim(nb));
            if s > current.0 {
                current = (s, nb);
                moved = true;
            }
        }
        if !moved {
            return current;
        }
    }
}

/// Why a layer search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// The beam converged: no candidate can improve the results.
    Converged,
    /// More than its budget of similarities was computed first.
    OverBudget,
}

/// Beam search on one layer (the paper's Algorithm 2) from `entry`, leaving the best `ef` nodes
/// that pass `allow` in `scratch.results`. Nodes failing `allow` are still expanded, so they
/// keep the graph connected, but never become results; `allow` is only asked about nodes that
/// would enter the results. Gives up once more than `budget` similarities were computed.
#[allow(clippy::too_many_arguments)]
pub(super) fn search_layer(
    graph: &impl Adjacency,
    layer: usize,
    n: usize,
    space: &impl Space,
    entries: &[(f32, u32)],
    ef: usize,
    allow: &mut impl FnMut(u32) -> bool,
    budget: usize,
    scratch: &mut Scratch,
) -> Ended {
    scratch.start(n);
    let Scratch {
        stamps,
        generation,
        candidates,
        results,
        buf,
        fresh,
    } = scratch;
    let generation = *generation;
    for &(sim, node) in entries {
        if stamps[node as usize] == generation {
            continue;
        }
        stamps[node as usize] = generation;
        candidates.push(Scored::new(sim, node));
        if allow(node) {
            results.push(Reverse(Scored::new(sim, node)));
            if results.len() > ef {
                results.pop();
            }
        }
    }
    // The worst result once there are `ef` of them; until then every node is worth a look.
    let mut bound = match results.peek() {
        Some(worst) if results.len() >= ef => worst.0.sim(),
        _ => f32::NEG_INFINITY,
    };
    let mut computed = entries.len();
    while let Some(current) = candidates.pop() {
        if current.sim() < bound {
            break;
        }
        if layer == 0 {
            if let Some(next) = candidates.peek() {
                graph.prefetch(next.node());
            }
        }
        // First the unvisited neighbours, their vectors requested from memory all at once,
        // then their similarities: the loads overlap instead of waiting one after another.
        // The unvisited are kept without a branch (each neighbour written, the count moved on
        // only past an unvisited one): whether a neighbour was visited is a coin toss to the
        // branch predictor, and the mispredictions cost more than the writes.
        let neighbours = graph.neighbours(current.node(), layer, buf);
        fresh.clear();
        fresh.resize(neighbours.len(), 0);
        let mut unvisited = 0;
        for &nb in neighbours {
            let stamp = &mut stamps[nb as usize];
            let seen = *stamp == generation;
            *stamp = generation;
            fresh[unvisited] = nb;
            unvisited += usize::from(!seen);
        }
        fresh.truncate(unvisited);
        for &nb in fresh.iter() {
            space.prefetch(nb);
        }
        computed += fresh.len();
        for &nb in fresh.iter() {
            let s = key(space.sim(nb));
            if s > bound || results.len() < ef {
                candidates.push(Scored::new(s, nb));
                if allow(nb) {
                    results.push(Reverse(Scored::new(s, nb)));
                    if results.len() > ef {
                        results.pop();
                    }
                    if results.len() >= ef {
                        bound = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.sim());
                    }
                }
            }
        }
        if computed > budget {
            return Ended::OverBudget;
        }
    }
    Ended::Converged
}

/// The paper's neighbour-selection heuristic (Algorithm 4) with part of its "keep pruned
/// connections" option: walking `candidates` best first, keep one only if it is at least as
/// similar to the base as to every neighbour kept so far, until `m` are kept; then, if fewer
/// than `m / KEEP_PRUNED_SHARE` were kept, add the best pruned candidates up to that many.
/// `pair(a, b)` is the similarity of two nodes; `candidates` hold each one's similarity to the
/// base.
///
/// The heuristic alone keeps long links, which is what makes the graph navigable; the floor is
/// for rows crowded into a narrow cone, where it prunes almost everything (the module doc has
/// the figures).
pub(super) fn select_neighbours(
    candidates: &[Scored],
    m: usize,
    pair: impl Fn(u32, u32) -> f32,
    kept: &mut Vec<u32>,
) {
    kept.clear();
    if candidates.len() <= m {
        kept.extend(candidates.iter().map(|c| c.node()));
        return;
    }
    for c in candidates {
        if kept.len() >= m {
            break;
        }
        let (s, node) = (c.sim(), c.node());
        if kept.iter().all(|&r| key(pair(node, r)) <= s) {
            kept.push(node);
        }
    }
    let floor = m / KEEP_PRUNED_SHARE;
    for c in candidates {
        if kept.len() >= floor {
            break;
        }
        if !kept.contains(&c.node()) {
            kept.push(c.node());
        }
    }
}
