"""Distances, CMC over random validation galleries, and the official single-query CMC / mAP protocols."""
import numpy as np


def cosine_distance(a, b):
    return 1.0 - np.asarray(a, np.float64) @ np.asarray(b, np.float64).T


def squared_euclidean(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.maximum((a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :], 0.0)


DISTANCES = {"cosine": cosine_distance, "sqeuclidean": squared_euclidean}


def random_galleries(labels, cameras, count, seed0):
    """`count` pairs (probe indices, gallery indices): one of each per identity, different cameras when
    possible; gallery i uses RandomState(seed0 + i). Identities with a single image are left out."""
    labels, cameras = np.asarray(labels), np.asarray(cameras)
    by_id = {}
    for i, label in enumerate(labels):
        by_id.setdefault(int(label), []).append(i)
    galleries = []
    for g in range(count):
        rng = np.random.RandomState(seed0 + g)
        probes, gallery = [], []
        for label in sorted(by_id):
            idx = by_id[label]
            if len(idx) < 2:
                continue
            p = idx[rng.randint(len(idx))]
            other_cam = [i for i in idx if cameras[i] != cameras[p]]
            pool = other_cam or [i for i in idx if i != p]
            probes.append(p)
            gallery.append(pool[rng.randint(len(pool))])
        galleries.append((np.array(probes), np.array(gallery)))
    return galleries


def cmc_ranks(distance, probe_labels, gallery_labels, ks=(1, 5, 10, 20)):
    """Fraction of probes whose true match is among the k nearest gallery items, for each k."""
    order = np.argsort(distance, axis=1, kind="stable")
    hits = np.asarray(gallery_labels)[order] == np.asarray(probe_labels)[:, None]
    first = np.where(hits.any(1), hits.argmax(1), distance.shape[1])
    return {k: float(np.mean(first < k)) for k in ks}


def average_precision(order, good, junk):
    """The official Market-1501 compute_AP: CMC curve and trapezoid-rule AP of one query.

    order: gallery indices sorted by distance; good / junk: sets of gallery indices."""
    cmc = np.zeros(len(order))
    ngood = len(good)
    old_recall, old_precision, ap = 0.0, 1.0, 0.0
    hits, ranked, found, njunk = 0, 0, 0, 0
    for n, g in enumerate(order):
        is_good = g in good
        if is_good:
            cmc[n - njunk:] = 1
            found += 1
        if g in junk:
            njunk += 1
            continue
        if is_good:
            hits += 1
        recall = hits / ngood
        precision = hits / (ranked + 1)
        ap += (recall - old_recall) * (old_precision + precision) / 2
        old_recall, old_precision = recall, precision
        ranked += 1
        if found == ngood:
            break
    return ap, cmc


def evaluate_protocol(distance, q_ids, q_cams, g_ids, g_cams, ks=(1, 5, 10), junk_id=-1):
    """Single-query CMC and mAP: good = same id on another camera; junk = id `junk_id` and same id on the
    same camera; everything else (distractors with id 0 included) is a negative. Queries without a good
    gallery item are skipped. Returns dict with rank-k, mAP and the number of queries scored."""
    q_ids, q_cams, g_ids, g_cams = map(np.asarray, (q_ids, q_cams, g_ids, g_cams))
    cmc_sum = np.zeros(len(g_ids))
    aps = []
    for q in range(len(q_ids)):
        same_id = g_ids == q_ids[q]
        same_cam = g_cams == q_cams[q]
        good = set(np.flatnonzero(same_id & ~same_cam).tolist())
        if not good:
            continue
        junk = set(np.flatnonzero((g_ids == junk_id) | (same_id & same_cam)).tolist())
        ap, cmc = average_precision(np.argsort(distance[q], kind="stable"), good, junk)
        aps.append(ap)
        cmc_sum += cmc
    n = max(len(aps), 1)
    result = {f"rank{k}": float(cmc_sum[k - 1] / n) for k in ks if k <= len(g_ids)}
    result["mAP"] = float(np.mean(aps)) if aps else 0.0
    result["queries"] = len(aps)
    return result
