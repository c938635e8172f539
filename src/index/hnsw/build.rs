//! Building the HNSW graph: insertion (serial for the skeleton, then parallel), the locality
//! order of insertion, and the repair passes that link every node back into the graph.

use super::*;

/// Everything an insertion needs.
pub(super) struct Builder<'a> {
    pub(super) vectors: &'a [f32],
    pub(super) codes: Option<&'a Codes>,
    pub(super) dim: usize,
    pub(super) levels: &'a [u8],
    pub(super) entry: u32,
    pub(super) max_level: usize,
    pub(super) m: usize,
    pub(super) ef_construction: usize,
    pub(super) graph: BuildGraph,
}

impl Builder<'_> {
    #[inline(always)]
    pub(super) fn vector(&self, node: u32) -> &[f32] {
        &self.vectors[node as usize * self.dim..][..self.dim]
    }

    /// The similarity the graph is built on: the cosine of the two rows.
    #[inline(always)]
    pub(super) fn pair(&self, a: u32, b: u32) -> f32 {
        match self.codes {
            Some(codes) => codes.pair(a, b),
            None => crate::simd::dot(self.vector(a), self.vector(b)),
        }
    }

    /// Asks the CPU for the row of `node` the build compares.
    #[inline(always)]
    pub(super) fn prefetch(&self, node: u32) {
        match self.codes {
            Some(codes) => crate::simd::prefetch(codes.row(node)),
            None => crate::simd::prefetch(self.vector(node)),
        }
    }

    /// Inserts `node` into the graph (the paper's Algorithm 1).
    pub(super) fn insert(&self, node: u32, scratch: &mut Scratch) {
        if node == self.entry {
            return;
        }
        let n = self.levels.len();
        let level = self.levels[node as usize] as usize;
        let space = NodeSpace {
            builder: self,
            node,
        };
        let mut current = (key(space.sim(self.entry)), self.entry);
        for layer in (level + 1..=self.max_level).rev() {
            current = greedy(&self.graph, layer, &space, current, &mut scratch.buf);
        }
        let ef = self.ef_construction.max(self.m);
        let mut found: Vec<Scored> = Vec::with_capacity(ef);
        let mut selected = Vec::with_capacity(2 * self.m + 1);
        for layer in (0..=level.min(self.max_level)).rev() {
            let mut not_self = |other| other != node;
            search_layer(
                &self.graph,
                layer,
                n,
                &space,
                &[current],
                ef,
                &mut not_self,
                usize::MAX,
                scratch,
            );
            found.clear();
            found.extend(scratch.results.drain().map(|Reverse(s)| s));
            found.sort_unstable_by(|a, b| b.cmp(a));
            let Some(best) = found.first() else {
                continue;
            };
            current = (best.sim(), best.node());
            select_neighbours(&found, self.m, |a, b| self.pair(a, b), &mut selected);
            {
                let _lock = self.graph.lock(node);
                self.graph.write(node, layer, &selected);
            }
            let cap = if layer == 0 { 2 * self.m } else { self.m };
            for &neighbour in &selected {
                self.connect(neighbour, node, layer, cap, scratch);
            }
        }
    }

    /// Adds `new` to the list of `node` on `layer`, pruning it back to `cap` with the heuristic
    /// when full.
    pub(super) fn connect(
        &self,
        node: u32,
        new: u32,
        layer: usize,
        cap: usize,
        scratch: &mut Scratch,
    ) {
        let _lock = self.graph.lock(node);
        let mut list: Vec<u32> = Vec::with_capacity(cap + 1);
        list.extend_from_slice(self.graph.neighbours(node, layer, &mut scratch.buf));
        if list.contains(&new) {
            return;
        }
        list.push(new);
        if list.len() > cap {
            let mut candidates: Vec<Scored> = list
                .iter()
                .map(|&other| Scored::new(key(self.pair(node, other)), other))
                .collect();
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            select_neighbours(&candidates, cap, |a, b| self.pair(a, b), &mut list);
        }
        self.graph.write(node, layer, &list);
    }
}

/// The rows as int8 codes for the build's comparisons (rows of [`CODED_MIN_DIM`] dimensions or
/// more; see the module doc), around the rows' mean `μ`: row `x` is `μ + s · c` with
/// `c_i = round((x_i − μ_i) / s)` and `s = max_i |x_i − μ_i| / 127`, and
/// `x · y = (x − μ)·(y − μ) + (x·μ − ‖μ‖²/2) + (y·μ − ‖μ‖²/2)`: the integer product of the
/// codes times both scales, plus the last two terms, kept per row in f32 (`offsets`). Centring
/// is what keeps the error small on rows crowded in a cone: the shared direction is exact, and
/// only the spread around it is rounded.
pub(super) struct Codes {
    codes: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<f32>,
    dim: usize,
}

impl Codes {
    pub(super) fn new(vectors: &[f32], dim: usize) -> Codes {
        let dim = dim.max(1);
        let rows = vectors.len() / dim;
        // The mean of the finite rows (a NaN row compares as NaN, as its f32 row would, and
        // must not spoil the others).
        let mut mean = vec![0.0f64; dim];
        let mut finite = 0usize;
        for row in vectors.chunks_exact(dim) {
            if row.iter().all(|x| x.is_finite()) {
                finite += 1;
                for (m, &x) in mean.iter_mut().zip(row) {
                    *m += f64::from(x);
                }
            }
        }
        let mean: Vec<f32> = mean
            .iter()
            .map(|m| (m / finite.max(1) as f64) as f32)
            .collect();
        let half_norm = 0.5 * mean.iter().map(|m| m * m).sum::<f32>();
        let mut codes = vec![0i8; rows * dim];
        let (scales, offsets): (Vec<f32>, Vec<f32>) = codes
            .par_chunks_mut(dim)
            .zip(vectors.par_chunks(dim))
            .map(|(code, row)| {
                let offset = crate::simd::dot(row, &mean) - half_norm;
                let top = row
                    .iter()
                    .zip(&mean)
                    .fold(0.0f32, |m, (x, u)| m.max((x - u).abs()));
                if !(top > 0.0 && top.is_finite()) {
                    return (0.0, offset);
                }
                let scale = top / 127.0;
                for ((c, x), u) in code.iter_mut().zip(row).zip(&mean) {
                    *c = ((x - u) / scale).round().clamp(-127.0, 127.0) as i8;
                }
                (scale, offset)
            })
            .unzip();
        Codes {
            codes,
            scales,
            offsets,
            dim,
        }
    }

    /// The codes of `node`'s row.
    #[inline(always)]
    pub(super) fn row(&self, node: u32) -> &[i8] {
        &self.codes[node as usize * self.dim..][..self.dim]
    }

    /// The inner product of two rows, from their codes (exact but for the rounding of the
    /// codes: the integer product is exact, and below 2^24 in f32).
    #[inline(always)]
    pub(super) fn pair(&self, a: u32, b: u32) -> f32 {
        let dot = crate::simd::dot_i8(self.row(a), self.row(b));
        let (a, b) = (a as usize, b as usize);
        dot as f32 * (self.scales[a] * self.scales[b]) + (self.offsets[a] + self.offsets[b])
    }
}

/// Groups the identical rows: returns one representative per distinct row (its lowest row, in
/// ascending order) and, for each representative, all the rows equal to it, ascending. Rows are
/// compared bit for bit.
pub(super) fn distinct_rows(rows: &ItemEmbeddings) -> Vec<Vec<u32>> {
    let bits = |r: u32| rows.row(r as usize).iter().map(|x| x.to_bits());
    let mut sorted: Vec<u32> = (0..rows.len() as u32).collect();
    sorted.sort_unstable_by(|&a, &b| bits(a).cmp(bits(b)).then(a.cmp(&b)));
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for (i, &row) in sorted.iter().enumerate() {
        match groups.last_mut() {
            Some(group) if i > 0 && bits(sorted[i - 1]).eq(bits(row)) => group.push(row),
            _ => groups.push(vec![row]),
        }
    }
    groups.sort_unstable_by_key(|group| group[0]);
    groups
}

/// An order of the given rows that keeps similar rows together: a random-projection tree whose
/// every split separates a group at the median of its projections on the difference of two of
/// its random rows, down to groups of [`ORDER_LEAF`]; the order is the leaves' from left to
/// right. Graph neighbours then mostly sit in nearby memory, which a search reaches through
/// fewer cache lines and pages.
pub(super) fn locality_order(rows: &ItemEmbeddings, mut order: Vec<u32>, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(crate::rng::splitmix64(seed ^ 0x6f72_6465));
    let mut projections = Vec::with_capacity(order.len());
    // Groups still to split, as ranges of `order`.
    let mut stack = vec![(0, order.len())];
    while let Some((start, end)) = stack.pop() {
        if end - start <= ORDER_LEAF {
            continue;
        }
        let group = &mut order[start..end];
        let row = |r: u32| rows.row(r as usize);
        let a = row(group[rng.random_range(0..group.len())]);
        let b = row(group[rng.random_range(0..group.len())]);
        let direction: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        projections.clear();
        projections.extend(group.iter().map(|&r| (key(dot(row(r), &direction)), r)));
        let mid = projections.len() / 2;
        // Ties (a zero direction) fall back on the row order: still an even split.
        projections.select_nth_unstable_by(mid, |x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        for (slot, &(_, r)) in group.iter_mut().zip(projections.iter()) {
            *slot = r;
        }
        stack.push((start + mid, end));
        stack.push((start, start + mid));
    }
    order
}

/// Builds the graph over `vectors` (node order, levels given, node 0 on the top layer):
/// returns the layer-0 and upper-layer arrays.
pub(super) fn build_graph(
    vectors: &[f32],
    dim: usize,
    metric: Metric,
    levels: &[u8],
    params: HnswParams,
) -> (Vec<u32>, Vec<u32>) {
    let nodes = levels.len();
    let m = params.m;
    let upper_start = upper_offsets(levels, m);
    let zeros = |len: usize| (0..len).map(|_| AtomicU32::new(0)).collect::<Vec<_>>();
    // The graph links rows by angle for both metrics: for inner product over a unit copy of
    // the rows (see the module doc).
    let unit: Vec<f32>;
    let graph_vectors = match metric {
        Metric::Cosine => vectors,
        Metric::InnerProduct | Metric::L2 => {
            unit = normalized(vectors, dim);
            &unit
        }
    };
    let codes = (dim >= CODED_MIN_DIM).then(|| Codes::new(graph_vectors, dim));
    let builder = Builder {
        vectors: graph_vectors,
        codes: codes.as_ref(),
        dim,
        levels,
        entry: 0,
        max_level: levels.first().map_or(0, |&l| l as usize),
        m,
        ef_construction: params.ef_construction,
        graph: BuildGraph {
            m,
            layer0: zeros(nodes * (1 + 2 * m)),
            upper: zeros(upper_start[nodes]),
            upper_start,
            locks: (0..nodes).map(|_| Mutex::new(())).collect(),
        },
    };
    // Node 0, the entry point, is on the top layer: inserted first by construction, so
    // parallel inserts never race to replace it. Then a random "skeleton", the first of it one
    // by one, which spreads the early long links over all the data; then the rest in node
    // order, so consecutive inserts search the same region of memory, which is then in cache.
    let mut order: Vec<u32> = (1..nodes as u32).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(params.seed));
    let skeleton = (order.len() / SKELETON_SHARE)
        .max(SERIAL_INSERTS)
        .min(order.len());
    order[skeleton..].sort_unstable();
    let serial = skeleton.min(SERIAL_INSERTS);
    with_scratch(|scratch| {
        for &node in &order[..serial] {
            builder.insert(node, scratch);
        }
    });
    for part in [&order[serial..skeleton], &order[skeleton..]] {
        part.par_iter()
            .for_each(|&node| with_scratch(|scratch| builder.insert(node, scratch)));
    }
    let BuildGraph {
        layer0,
        upper,
        upper_start,
        ..
    } = builder.graph;
    let mut layer0: Vec<u32> = layer0.into_iter().map(AtomicU32::into_inner).collect();
    let upper: Vec<u32> = upper.into_iter().map(AtomicU32::into_inner).collect();
    for _ in 0..REPAIR_PASSES {
        let graph = Graph {
            m,
            layer0: &layer0,
            upper: &upper,
            upper_start: &upper_start,
        };
        let links = unreachable_links(&graph, graph_vectors, dim, levels, params.ef_construction);
        if links.is_empty() {
            break;
        }
        add_links(&mut layer0, m, &links);
    }
    (layer0, upper)
}

/// Similarity between two nodes of the graph's unit vectors.
pub(super) struct PairSpace<'a> {
    pub(super) vectors: &'a [f32],
    pub(super) dim: usize,
    pub(super) node: u32,
}

impl Space for PairSpace<'_> {
    fn sim(&self, other: u32) -> f32 {
        let row = |i: u32| &self.vectors[i as usize * self.dim..][..self.dim];
        crate::simd::dot(row(self.node), row(other))
    }

    fn prefetch(&self, other: u32) {
        crate::simd::prefetch(&self.vectors[other as usize * self.dim..][..self.dim]);
    }
}

/// Which nodes layer 0 reaches from the entry point (node 0).
pub(super) fn reachable_nodes(graph: &Graph<'_>, nodes: usize) -> Vec<bool> {
    let mut reached = vec![false; nodes];
    let mut stack = Vec::new();
    if nodes > 0 {
        reached[0] = true;
        stack.push(0u32);
    }
    let mut buf = Vec::new();
    while let Some(node) = stack.pop() {
        for &next in graph.neighbours(node, 0, &mut buf) {
            if !reached[next as usize] {
                reached[next as usize] = true;
                stack.push(next);
            }
        }
    }
    reached
}

/// The links `(from, to)` that would make the nodes layer 0 cannot reach from the entry point
/// reachable: from each one's most similar reachable node (found by a search of width `ef`,
/// or else by a scan), to it. Pruning leaves a few nodes of a parallel build without in-links
/// (about 4 of 86,537): without this they could never be found.
pub(super) fn unreachable_links(
    graph: &Graph<'_>,
    vectors: &[f32],
    dim: usize,
    levels: &[u8],
    ef: usize,
) -> Vec<(u32, u32)> {
    let nodes = levels.len();
    let reached = reachable_nodes(graph, nodes);
    let max_level = levels.first().map_or(0, |&l| l as usize);
    let link = |node: u32| {
        let space = PairSpace { vectors, dim, node };
        let found = with_scratch(|scratch| {
            let mut current = (key(space.sim(0)), 0);
            for layer in (1..=max_level).rev() {
                current = greedy(graph, layer, &space, current, &mut scratch.buf);
            }
            let mut allow = |other: u32| reached[other as usize];
            let nodes = reached.len();
            search_layer(
                graph,
                0,
                nodes,
                &space,
                &[current],
                ef,
                &mut allow,
                usize::MAX,
                scratch,
            );
            scratch.results.drain().map(|Reverse(s)| s).max()
        });
        let best = found.or_else(|| {
            (0..nodes as u32)
                .filter(|&other| reached[other as usize])
                .map(|other| Scored::new(key(space.sim(other)), other))
                .max()
        });
        best.map(|best| (best.node(), node))
    };
    // Independent searches: in parallel, collected in node order (the result is the same).
    (0..nodes as u32)
        .into_par_iter()
        .filter(|&node| !reached[node as usize])
        .filter_map(link)
        .collect()
}

/// Adds each link `(from, to)` to layer 0: appended when `from`'s list has room, otherwise in
/// place of the neighbour with the most in-links (at least two, so none loses its last one).
pub(super) fn add_links(layer0: &mut [u32], m: usize, links: &[(u32, u32)]) {
    let stride = 1 + 2 * m;
    let mut in_links = vec![0u32; layer0.len() / stride];
    for block in layer0.chunks_exact(stride) {
        for &nb in &block[1..1 + block[0] as usize] {
            in_links[nb as usize] += 1;
        }
    }
    for &(from, to) in links {
        let block = &mut layer0[from as usize * stride..][..stride];
        let count = block[0] as usize;
        if block[1..1 + count].contains(&to) {
            continue;
        }
        if count < 2 * m {
            block[1 + count] = to;
            block[0] += 1;
        } else {
            let Some(slot) = (1..1 + count).max_by_key(|&slot| in_links[block[slot] as usize])
            else {
                continue;
            };
            if in_links[block[slot] as usize] < 2 {
                continue;
            }
            in_links[block[slot] as usize] -= 1;
            block[slot] = to;
        }
        in_links[to as usize] += 1;
    }
}
