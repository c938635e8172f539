"""Python peer benchmark for issue 14 ("Training a full release in a minute").

Times, on a MovieLens-layout directory (ratings.csv with header
userId,movieId,rating,timestamp; movies.csv), the stages a Python user would
run to train what `movierec train` trains; it is the peer of `movierec train`
in docs/BENCHMARKS.md:

  load   pandas.read_csv of ratings.csv (and movies.csv), factorize users and
         movies, build the float32 CSR user x item and item x user matrices
  knn    implicit.nearest_neighbours.CosineRecommender(K=100).fit(user_items)
  svd    sklearn TruncatedSVD(128, randomized, n_iter=--svd-iters, default 5)
         on the item x user matrix
  als    implicit.als.AlternatingLeastSquares(factors=64, iterations=15,
         regularization=0.05), fit on user_items (confidence = rating)
  index  FAISS IndexHNSWFlat(d, 16), inner product, efConstruction 100, on the
         L2-normalised SVD item vectors; recall@10 at efSearch 64 against
         IndexFlatIP on 500 random query items

implicit 0.7 expects user_items (users as rows, items as columns) in fit, for
both ALS and the nearest-neighbour models. As implicit's own warning advises,
BLAS is limited to one thread during the ALS fit (threadpoolctl, if present);
implicit and faiss use OpenMP with all cores.

Install:  pip install implicit==0.7.3 faiss-cpu scikit-learn pandas scipy
Run:      python3 benches/python_stack.py DATA_DIR [--stages load,knn,svd,als,index]
                                                   [--svd-iters N]
Prints `stage: X.XX s` per stage, `#` notes, then one JSON line with all figures.
"""
import argparse
import contextlib
import json
import os
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # optional
    threadpool_info = threadpool_limits = None

STAGES = ["load", "knn", "svd", "als", "index"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--svd-iters", type=int, default=5)
    args = ap.parse_args()
    wanted = {s.strip() for s in args.stages.split(",") if s.strip()}
    unknown = wanted - set(STAGES)
    if unknown:
        ap.error(f"unknown stages: {sorted(unknown)}")
    wanted.add("load")  # every other stage needs the matrices
    if "index" in wanted and "svd" not in wanted:
        print("# index needs the SVD item vectors: running svd too")
        wanted.add("svd")

    out = {"data_dir": args.data_dir, "svd_iters": args.svd_iters,
           "cpu_count": os.cpu_count(), "seconds": {}}
    secs = out["seconds"]

    def report(stage, t0):
        secs[stage] = round(time.perf_counter() - t0, 4)
        print(f"{stage}: {secs[stage]:.2f} s", flush=True)

    # load
    t0 = time.perf_counter()
    ratings = pd.read_csv(
        os.path.join(args.data_dir, "ratings.csv"),
        dtype={"userId": np.int32, "movieId": np.int32,
               "rating": np.float32, "timestamp": np.int64})
    movies = pd.read_csv(os.path.join(args.data_dir, "movies.csv"))
    out["read_csv_seconds"] = round(time.perf_counter() - t0, 4)
    users, user_ids = pd.factorize(ratings["userId"])
    items, item_ids = pd.factorize(ratings["movieId"])
    shape = (len(user_ids), len(item_ids))
    user_items = sp.csr_matrix(
        (ratings["rating"].to_numpy(np.float32), (users, items)), shape=shape)
    item_users = user_items.T.tocsr()
    report("load", t0)
    out.update(ratings=int(user_items.nnz), users=shape[0],
               items=shape[1], movies_in_catalog=len(movies))

    if "knn" in wanted:
        # CosineRecommender.fit hands its own normalised COO copy to
        # all_pairs_knn, which converts it (timed) and warns each time
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        from implicit.nearest_neighbours import CosineRecommender
        knn = CosineRecommender(K=100)
        t0 = time.perf_counter()
        knn.fit(user_items, show_progress=False)
        report("knn", t0)
        assert knn.similarity.shape == (shape[1], shape[1])

    if "svd" in wanted:
        from sklearn.decomposition import TruncatedSVD
        t0 = time.perf_counter()
        svd = TruncatedSVD(n_components=128, algorithm="randomized",
                           n_iter=args.svd_iters, random_state=0)
        item_vecs = svd.fit_transform(item_users)
        report("svd", t0)
        default = " (default)" if args.svd_iters == 5 else ""
        print(f"# svd: 128 components, randomized, n_iter={args.svd_iters}{default}")

    if "als" in wanted:
        from implicit.als import AlternatingLeastSquares
        limit = (threadpool_limits(1, "blas") if threadpool_limits
                 else contextlib.nullcontext())
        with limit:
            als = AlternatingLeastSquares(factors=64, iterations=15,
                                          regularization=0.05, use_gpu=False,
                                          random_state=0)
            t0 = time.perf_counter()
            als.fit(user_items, show_progress=False)
            report("als", t0)
        assert als.item_factors.shape[0] == shape[1]

    if "index" in wanted:
        import faiss
        x = np.ascontiguousarray(item_vecs, dtype=np.float32)
        faiss.normalize_L2(x)
        d = x.shape[1]
        t0 = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 100
        hnsw.add(x)
        report("index", t0)
        hnsw.hnsw.efSearch = 64
        exact = faiss.IndexFlatIP(d)
        exact.add(x)
        q = x[np.random.default_rng(0).choice(len(x), min(500, len(x)),
                                              replace=False)]
        got_d, got = hnsw.search(q, 10)
        truth_d, truth = exact.search(q, 10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)])
        # items rated by one user share a direction: ties at the 10th score are
        # common, so also count hits scoring at least the exact 10th score
        tied = np.mean(got_d >= truth_d[:, 9:10] - 1e-5)
        out.update(recall_at_10=float(recall), recall_at_10_ties=float(tied),
                   ef_search=64, ef_construction=100,
                   queries=len(q), faiss_omp_threads=faiss.omp_get_max_threads())
        print(f"# index: HNSW M=16 efConstruction=100, recall@10 {recall:.3f} "
              f"({tied:.3f} counting ties) at efSearch 64 on {len(q)} queries")

    out["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if threadpool_info:
        out["threadpools"] = [{k: p.get(k) for k in ("user_api", "internal_api",
                                                     "num_threads")}
                              for p in threadpool_info()]
    print(f"# threads: os.cpu_count() = {out['cpu_count']}; "
          f"peak RSS {out['peak_rss_kb']} KB")
    out["total_seconds"] = round(sum(secs.values()), 4)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
