"""Disentanglement scores for a learned code against known ground-truth factors.

The definitions follow Google's disentanglement_lib
(https://github.com/google-research/disentanglement_lib; Locatello et al., "Challenging
Common Assumptions in the Unsupervised Learning of Disentangled Representations", ICML 2019):
MIG, the FactorVAE score, the beta-VAE score and DCI, plus an identity-verification ROC AUC
for the intrinsic code and Pearson / Spearman correlations for calibrated factors.

Everything here is plain numpy; scipy and scikit-learn are imported only by the functions that
need them, so importing this module costs nothing. Codes are arrays of shape
`(num_points, num_codes)` and factors arrays of shape `(num_points, num_factors)`, one row per
data point (disentanglement_lib stores the transpose).
"""

import inspect
import numbers

import numpy as np

from keras_dcign.extras import require as _require


def _as_matrix(array, name, *, min_rows=1, min_cols=1):
    """`array` as a finite 2-D float array, or a one-line ValueError."""
    matrix = np.asarray(array)
    if matrix.ndim != 2:
        raise ValueError(
            f"{name} has shape {matrix.shape}; expected a 2-D array (num_points, num_columns)."
        )
    if matrix.shape[0] < min_rows or matrix.shape[1] < min_cols:
        raise ValueError(
            f"{name} has shape {matrix.shape}; expected at least {min_rows} rows and "
            f"{min_cols} columns."
        )
    if not np.issubdtype(matrix.dtype, np.number) or np.issubdtype(
        matrix.dtype, np.complexfloating
    ):
        raise ValueError(f"{name} has dtype {matrix.dtype}; expected real numbers.")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite numbers.")
    return matrix


def _same_rows(first, first_name, second, second_name):
    if first.shape[0] != second.shape[0]:
        raise ValueError(
            f"{first_name} has {first.shape[0]} rows but {second_name} has {second.shape[0]}; "
            "expected one row per data point in both."
        )


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}={value!r}; expected an integer >= {minimum}.")
    return int(value)


def _is_integer_valued(column):
    return np.issubdtype(column.dtype, np.integer) or bool(np.all(column == np.round(column)))


def discretize(codes, num_bins=20):
    """Discretise each column of `codes` into `num_bins` equal-width histogram bins.

    This is disentanglement_lib's `_histogram_discretize`: for every column the bin edges are
    those of `np.histogram(column, num_bins)` and each value is mapped to
    `np.digitize(value, edges[:-1])`, so the labels run from 1 to `num_bins` and the column's
    maximum falls in the last bin.

    Args:
        codes: array of shape `(num_points,)` or `(num_points, num_codes)`.
        num_bins: number of bins per column, at least 2.

    Returns:
        An integer array of the same shape as `codes` with values in `1..num_bins`.
    """
    num_bins = _check_int(num_bins, "num_bins", 2)
    array = np.asarray(codes)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f"codes has shape {array.shape}; expected a non-empty 1-D or 2-D array.")
    matrix = _as_matrix(array.reshape(array.shape[0], -1), "codes")
    discrete = np.zeros(matrix.shape, dtype=np.int64)
    for column in range(matrix.shape[1]):
        values = matrix[:, column]
        edges = np.histogram(values, num_bins)[1]
        discrete[:, column] = np.digitize(values, edges[:-1])
    return discrete.reshape(array.shape)


def mutual_info_matrix(codes_discrete, factors):
    """Discrete mutual information between every code column and every factor.

    As disentanglement_lib's `discrete_mutual_info`, entry `(i, j)` is
    `sklearn.metrics.mutual_info_score(factors[:, j], codes_discrete[:, i])` in nats.

    Args:
        codes_discrete: integer labels of shape `(num_points, num_codes)`, e.g. from
            `discretize`.
        factors: discrete labels of shape `(num_points, num_factors)`.

    Returns:
        A float array of shape `(num_codes, num_factors)`.
    """
    codes_discrete = _as_matrix(codes_discrete, "codes_discrete")
    factors = _as_matrix(factors, "factors")
    _same_rows(codes_discrete, "codes_discrete", factors, "factors")
    _require("sklearn", "mutual_info_matrix")
    from sklearn.metrics import mutual_info_score

    matrix = np.zeros((codes_discrete.shape[1], factors.shape[1]))
    for i in range(codes_discrete.shape[1]):
        for j in range(factors.shape[1]):
            matrix[i, j] = mutual_info_score(factors[:, j], codes_discrete[:, i])
    return matrix


def mig(codes, factors, *, num_bins=20):
    """Mutual Information Gap (Chen et al., 2018), as in disentanglement_lib's `mig.py`.

    Codes are discretised with `discretize(codes, num_bins)`; factor columns that are not
    integer-valued are discretised the same way, integer-valued ones are used as labels. For
    each factor `k` the mutual information with every code dimension is sorted and
    `(I_top1 - I_top2) / H(v_k)`, with `H(v_k) = mutual_info_score(v_k, v_k)`, is its gap. The
    score is the mean gap over factors: 1 when each factor is captured by exactly one
    dimension, near 0 when it is spread over several or captured by none. A constant factor
    has no entropy and its gap is reported as 0.

    Args:
        codes: float array of shape `(num_points, num_codes)`, `num_codes >= 2`.
        factors: array of shape `(num_points, num_factors)` of ground-truth factor values.
        num_bins: histogram bins per code (and per non-integer factor), at least 2.

    Returns:
        `{"mig": float, "per_factor": np.ndarray of shape (num_factors,)}`.
    """
    num_bins = _check_int(num_bins, "num_bins", 2)
    codes = _as_matrix(codes, "codes", min_cols=2)
    factors = _as_matrix(factors, "factors")
    _same_rows(codes, "codes", factors, "factors")
    _require("sklearn", "mig")
    from sklearn.metrics import mutual_info_score

    labels = np.empty(factors.shape, dtype=np.int64)
    for column in range(factors.shape[1]):
        values = factors[:, column]
        if _is_integer_valued(values):
            labels[:, column] = np.round(values).astype(np.int64)
        else:
            labels[:, column] = discretize(values, num_bins)
    info = mutual_info_matrix(discretize(codes, num_bins), labels)
    entropy = np.array([mutual_info_score(f, f) for f in labels.T])
    ranked = np.sort(info, axis=0)[::-1]
    gap = ranked[0] - ranked[1]
    per_factor = np.divide(gap, entropy, out=np.zeros_like(gap), where=entropy > 0)
    return {"mig": float(np.mean(per_factor)), "per_factor": per_factor}


def _check_codes(codes, name, batch_size, num_codes):
    """`codes` returned by a sampler as an array of shape (batch_size, num_codes)."""
    codes = np.asarray(codes)
    expected = f"({batch_size}, {num_codes if num_codes is not None else 'num_codes'})"
    if (
        codes.ndim != 2
        or codes.shape[0] != batch_size
        or (num_codes is not None and codes.shape[1] != num_codes)
    ):
        raise ValueError(f"{name} returned shape {codes.shape}; expected {expected}.")
    if not np.all(np.isfinite(codes)):
        raise ValueError(f"{name} returned NaN or infinite codes; expected finite numbers.")
    return codes


def factorvae_score(
    sample_fixed,
    num_factors,
    *,
    global_codes,
    batch_size=64,
    num_train=800,
    num_eval=400,
    prune_threshold=0.05,
    seed=0,
):
    """FactorVAE score (Kim & Mnih, 2018), as in disentanglement_lib's `factor_vae.py`.

    The scale of each code dimension is its standard deviation over `global_codes`
    (`ddof=1`). As in disentanglement_lib's `_prune_dims`, dimensions whose scale is below
    `prune_threshold` (collapsed to the prior) are dropped; when none is left the score is 0.
    Each vote draws a factor `k` uniformly, takes a batch of codes in which factor `k` is
    held fixed, and votes for the kept dimension with the smallest variance after division by
    its scale. A majority-vote classifier maps each dimension to the factor it got most votes
    for on the training votes; the score is its accuracy on the evaluation votes.

    Args:
        sample_fixed: callable `(k, batch_size, rng) -> codes` returning an array of shape
            `(batch_size, num_codes)`: the codes of `batch_size` data points that share one
            value of factor `k` while the other factors vary. `rng` is a
            `numpy.random.Generator`.
        num_factors: number of ground-truth factors, at least 1.
        global_codes: codes of shape `(num_points, num_codes)`, `num_points >= 2`, of data
            points drawn with all factors varying.
        batch_size: points per vote, at least 2.
        num_train: votes for the classifier, at least 1.
        num_eval: votes for the accuracy, at least 1.
        prune_threshold: dimensions with a global standard deviation below this are ignored.
        seed: seed of the `numpy.random.default_rng` passed to `sample_fixed`.

    Returns:
        `{"train_accuracy": float, "eval_accuracy": float, "num_active_dims": int}`.
    """
    num_factors = _check_int(num_factors, "num_factors", 1)
    batch_size = _check_int(batch_size, "batch_size", 2)
    num_train = _check_int(num_train, "num_train", 1)
    num_eval = _check_int(num_eval, "num_eval", 1)
    if not np.isfinite(prune_threshold) or prune_threshold < 0:
        raise ValueError(f"prune_threshold={prune_threshold!r}; expected a number >= 0.")
    global_codes = _as_matrix(global_codes, "global_codes", min_rows=2)
    num_codes = global_codes.shape[1]
    scale = np.std(global_codes, axis=0, ddof=1)
    active = np.flatnonzero((scale >= prune_threshold) & (scale > 0))
    if active.size == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    rng = np.random.default_rng(seed)

    def votes(num_points):
        counts = np.zeros((num_factors, num_codes), dtype=np.int64)
        for _ in range(num_points):
            k = int(rng.integers(num_factors))
            codes = _check_codes(
                sample_fixed(k, batch_size, rng), "sample_fixed", batch_size, num_codes
            )
            local = np.var(codes[:, active] / scale[active], axis=0, ddof=1)
            counts[k, active[np.argmin(local)]] += 1
        return counts

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)
    dims = np.arange(num_codes)
    train_accuracy = train_votes[classifier, dims].sum() / train_votes.sum()
    eval_votes = votes(num_eval)
    eval_accuracy = eval_votes[classifier, dims].sum() / eval_votes.sum()
    return {
        "train_accuracy": float(train_accuracy),
        "eval_accuracy": float(eval_accuracy),
        "num_active_dims": int(active.size),
    }


def betavae_score(sample_pair, num_factors, *, batch_size=64, num_train=800, num_eval=400, seed=0):
    """beta-VAE score (Higgins et al., 2017), as in disentanglement_lib's `beta_vae.py`.

    Each point draws a factor `k` uniformly and two batches of codes whose paired rows share
    the value of factor `k` (all other factors drawn independently); its feature is the mean
    over the batch of `|z1 - z2|`, its label `k`. A scikit-learn `LogisticRegression` is fit on
    `num_train` points and scored on `num_eval` fresh ones.

    Args:
        sample_pair: callable `(k, batch_size, rng) -> (z1, z2)` returning two arrays of shape
            `(batch_size, num_codes)` whose row `i` come from data points that agree on
            factor `k`. `rng` is a `numpy.random.Generator`.
        num_factors: number of ground-truth factors, at least 2.
        batch_size: pairs per point, at least 1.
        num_train: training points, at least 2.
        num_eval: evaluation points, at least 1.
        seed: seed of the `numpy.random.default_rng` passed to `sample_pair` and of the
            classifier.

    Returns:
        `{"train_accuracy": float, "eval_accuracy": float}`.
    """
    num_factors = _check_int(num_factors, "num_factors", 2)
    batch_size = _check_int(batch_size, "batch_size", 1)
    num_train = _check_int(num_train, "num_train", 2)
    num_eval = _check_int(num_eval, "num_eval", 1)
    _require("sklearn", "betavae_score")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    num_codes = None

    def points(num_points):
        nonlocal num_codes
        features, labels = [], np.zeros(num_points, dtype=np.int64)
        for i in range(num_points):
            k = int(rng.integers(num_factors))
            pair = sample_pair(k, batch_size, rng)
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ValueError(
                    f"sample_pair returned {type(pair).__name__}; expected a pair (z1, z2)."
                )
            z1 = _check_codes(pair[0], "sample_pair's z1", batch_size, num_codes)
            num_codes = z1.shape[1]
            z2 = _check_codes(pair[1], "sample_pair's z2", batch_size, num_codes)
            features.append(np.mean(np.abs(z1 - z2), axis=0))
            labels[i] = k
        return np.stack(features), labels

    train_points, train_labels = points(num_train)
    if np.unique(train_labels).size < 2:
        raise ValueError(
            f"num_train={num_train} drew a single factor; expected enough points to see "
            "at least two factors."
        )
    classifier = LogisticRegression(max_iter=5000, random_state=seed)
    classifier.fit(train_points, train_labels)
    eval_points, eval_labels = points(num_eval)
    return {
        "train_accuracy": float(np.mean(classifier.predict(train_points) == train_labels)),
        "eval_accuracy": float(np.mean(classifier.predict(eval_points) == eval_labels)),
    }


def _l1_logistic(seed):
    """An L1-penalised multinomial logistic regression across scikit-learn versions."""
    from sklearn.linear_model import LogisticRegression

    options = dict(solver="saga", C=1.0, max_iter=5000, random_state=seed)
    if inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated":
        options["l1_ratio"] = 1.0
    else:
        options["penalty"] = "l1"
    return LogisticRegression(**options)


def _normalised_entropy(distributions):
    """Entropy of each column of `distributions`, in base (number of rows); 0 for one row."""
    stats = _require("scipy.stats", "dci")
    if distributions.shape[0] < 2:
        return np.zeros(distributions.shape[1])
    return stats.entropy(distributions + 1e-11, base=distributions.shape[0], axis=0)


def dci(
    codes_train, factors_train, codes_test, factors_test, *, model="gbt", n_estimators=50, seed=0
):
    """Disentanglement, completeness and informativeness (Eastwood & Williams, 2018).

    As in disentanglement_lib's `dci.py`: one classifier per factor predicts the factor's
    label from the codes, and the absolute importances of the code dimensions form the
    importance matrix `R` of shape `(num_codes, num_factors)`.

    * disentanglement `= sum_d (1 - H_K(P_d)) * rho_d`, where `P_d` is row `d` of `R`
      normalised to sum to 1, `H_K` the entropy in base `K = num_factors` and
      `rho_d = sum(R[d]) / sum(R)`;
    * completeness: the same on the columns, with entropies in base `num_codes`;
    * informativeness: the classifiers' mean accuracy on the training and on the test data.

    Args:
        codes_train: float array of shape `(num_train, num_codes)`.
        factors_train: discrete factor labels of shape `(num_train, num_factors)`; every
            factor needs at least two values.
        codes_test: float array of shape `(num_test, num_codes)`.
        factors_test: discrete factor labels of shape `(num_test, num_factors)`.
        model: `"gbt"` (disentanglement_lib's choice): a scikit-learn
            `GradientBoostingClassifier` per factor, importances are its
            `feature_importances_`; or `"lasso"`: an L1-penalised `LogisticRegression` per
            factor on codes standardised with the training statistics, importances are the
            absolute coefficients averaged over classes.
        n_estimators: boosting stages of each `GradientBoostingClassifier` (disentanglement_lib
            uses scikit-learn's default of 100; 50 is faster and rarely changes the scores).
        seed: `random_state` of the classifiers.

    Returns:
        `{"disentanglement": float, "completeness": float, "informativeness_train": float,
        "informativeness_test": float}`.
    """
    if model not in ("gbt", "lasso"):
        raise ValueError(f"model={model!r}; expected 'gbt' or 'lasso'.")
    n_estimators = _check_int(n_estimators, "n_estimators", 1)
    codes_train = _as_matrix(codes_train, "codes_train")
    factors_train = _as_matrix(factors_train, "factors_train")
    codes_test = _as_matrix(codes_test, "codes_test")
    factors_test = _as_matrix(factors_test, "factors_test")
    _same_rows(codes_train, "codes_train", factors_train, "factors_train")
    _same_rows(codes_test, "codes_test", factors_test, "factors_test")
    if codes_test.shape[1] != codes_train.shape[1]:
        raise ValueError(
            f"codes_test has {codes_test.shape[1]} columns but codes_train has "
            f"{codes_train.shape[1]}; expected the same code dimensions."
        )
    if factors_test.shape[1] != factors_train.shape[1]:
        raise ValueError(
            f"factors_test has {factors_test.shape[1]} columns but factors_train has "
            f"{factors_train.shape[1]}; expected the same factors."
        )
    for k in range(factors_train.shape[1]):
        if np.unique(factors_train[:, k]).size < 2:
            raise ValueError(
                f"factors_train column {k} is constant; expected at least two values per factor."
            )
    _require("sklearn", "dci")
    from sklearn.ensemble import GradientBoostingClassifier

    if model == "lasso":
        mean = codes_train.mean(axis=0)
        std = codes_train.std(axis=0)
        std[std == 0] = 1.0
        codes_train = (codes_train - mean) / std
        codes_test = (codes_test - mean) / std

    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    importance = np.zeros((num_codes, num_factors))
    train_accuracy, test_accuracy = [], []
    for k in range(num_factors):
        if model == "gbt":
            classifier = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
            classifier.fit(codes_train, factors_train[:, k])
            importance[:, k] = np.abs(classifier.feature_importances_)
        else:
            classifier = _l1_logistic(seed)
            classifier.fit(codes_train, factors_train[:, k])
            importance[:, k] = np.mean(np.abs(classifier.coef_), axis=0)
        train_accuracy.append(np.mean(classifier.predict(codes_train) == factors_train[:, k]))
        test_accuracy.append(np.mean(classifier.predict(codes_test) == factors_test[:, k]))

    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    per_code = 1.0 - _normalised_entropy(importance.T)
    per_factor = 1.0 - _normalised_entropy(importance)
    code_weight = weights.sum(axis=1) / weights.sum()
    factor_weight = weights.sum(axis=0) / weights.sum()
    return {
        "disentanglement": float(np.sum(per_code * code_weight)),
        "completeness": float(np.sum(per_factor * factor_weight)),
        "informativeness_train": float(np.mean(train_accuracy)),
        "informativeness_test": float(np.mean(test_accuracy)),
    }


def verification_auc(embeddings, identities, *, num_pairs=2000, seed=0):
    """ROC AUC of telling same-identity from different-identity pairs by cosine similarity.

    `num_pairs` same-identity pairs (two different rows with equal labels; the first row is
    drawn uniformly among rows whose identity has at least two rows) and `num_pairs`
    different-identity pairs (a uniform row and a uniform row of another identity) are drawn;
    each pair is scored by the cosine similarity of its embeddings and
    `sklearn.metrics.roc_auc_score` measures how well the score separates the two kinds.
    1 means every same-identity pair is closer than every different-identity pair, 0.5 chance.

    Args:
        embeddings: float array of shape `(num_points, num_features)`, e.g. intrinsic codes.
        identities: identity labels of shape `(num_points,)`.
        num_pairs: pairs of each kind, at least 1.
        seed: seed of the `numpy.random.default_rng` that draws the pairs.

    Returns:
        The ROC AUC as a float.
    """
    _require("sklearn", "verification_auc")
    from sklearn.metrics import roc_auc_score

    scores, truth = verification_pairs(embeddings, identities, num_pairs=num_pairs, seed=seed)
    return float(roc_auc_score(truth, scores))


def verification_pairs(embeddings, identities, *, num_pairs=2000, seed=0):
    """The cosine similarities of `verification_auc`'s pairs, and which pairs are the same person.

    Returns:
        `(similarities, same)`: `2 * num_pairs` floats, then 1 for the same-identity pairs
        (the first `num_pairs`) and 0 for the others.
    """
    num_pairs = _check_int(num_pairs, "num_pairs", 1)
    embeddings = _as_matrix(embeddings, "embeddings")
    identities = np.asarray(identities)
    if identities.ndim != 1:
        raise ValueError(f"identities has shape {identities.shape}; expected (num_points,).")
    if identities.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"identities has {identities.shape[0]} entries but embeddings has "
            f"{embeddings.shape[0]} rows; expected one label per row."
        )
    _, labels, counts = np.unique(identities, return_inverse=True, return_counts=True)
    labels = labels.reshape(-1)
    if not np.any(counts >= 2):
        raise ValueError(
            f"identities has {counts.size} identities with one row each; expected at least one "
            "identity with two or more rows."
        )
    if counts.size < 2:
        raise ValueError(
            "identities has a single identity; expected at least two to form different pairs."
        )
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty_like(order)
    position[order] = np.arange(order.size)

    eligible = np.flatnonzero(counts[labels] >= 2)
    first = rng.choice(eligible, size=num_pairs)
    size, start = counts[labels[first]], starts[labels[first]]
    offset = (position[first] - start + rng.integers(1, size)) % size
    same = (first, order[start + offset])

    first = rng.integers(0, labels.size, size=num_pairs)
    size, start = counts[labels[first]], starts[labels[first]]
    rank = rng.integers(0, labels.size - size)
    different = (first, order[np.where(rank >= start, rank + size, rank)])

    norms = np.linalg.norm(embeddings, axis=1)
    unit = embeddings / np.maximum(norms, np.finfo(float).tiny)[:, None]
    scores = np.concatenate([np.sum(unit[a] * unit[b], axis=1) for a, b in (same, different)])
    truth = np.concatenate([np.ones(num_pairs), np.zeros(num_pairs)])
    return scores, truth


def equal_error_threshold(similarities, same):
    """The similarity threshold where false accepts and false rejects are equally frequent.

    Args:
        similarities: scores of pairs, higher meaning more alike.
        same: 1 for a same-identity pair, 0 otherwise (both kinds present).

    Returns:
        `(threshold, equal_error_rate)`: pairs at or above the threshold are called the same.
    """
    similarities = np.asarray(similarities, dtype="float64")
    same = np.asarray(same).astype(bool)
    if similarities.shape != same.shape or similarities.ndim != 1:
        raise ValueError(
            f"similarities has shape {similarities.shape} and same {same.shape}; expected two "
            "equal 1-D shapes."
        )
    if same.all() or not same.any():
        raise ValueError("same holds one kind of pair only; expected same and different pairs.")
    candidates = np.unique(similarities)
    false_reject = np.array([np.mean(similarities[same] < t) for t in candidates])
    false_accept = np.array([np.mean(similarities[~same] >= t) for t in candidates])
    best = int(np.argmin(np.abs(false_reject - false_accept)))
    rate = (false_reject[best] + false_accept[best]) / 2.0
    return float(candidates[best]), float(rate)


def correlations(values, latents):
    """Pearson and Spearman correlation between a factor's values and one latent unit.

    Uses `scipy.stats.pearsonr` (linear relation) and `scipy.stats.spearmanr` (monotone
    relation). When either input is constant the correlations are undefined; both are
    reported as 0.0 rather than NaN.

    Args:
        values: 1-D array of ground-truth factor values (e.g. degrees).
        latents: 1-D array of the same length, the latent unit's values.

    Returns:
        `{"pearson": float, "spearman": float}`.
    """
    values = np.asarray(values)
    latents = np.asarray(latents)
    for name, array in (("values", values), ("latents", latents)):
        if array.ndim != 1 or array.size < 2:
            raise ValueError(f"{name} has shape {array.shape}; expected a 1-D array of >= 2.")
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains non-finite or non-numeric values.")
    if values.size != latents.size:
        raise ValueError(
            f"values has {values.size} entries but latents has {latents.size}; expected the "
            "same length."
        )
    stats = _require("scipy.stats", "correlations")
    if np.ptp(values) == 0 or np.ptp(latents) == 0:
        return {"pearson": 0.0, "spearman": 0.0}
    pearson = stats.pearsonr(values, latents)[0]
    spearman = stats.spearmanr(values, latents)[0]
    return {"pearson": float(pearson), "spearman": float(spearman)}
