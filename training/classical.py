"""Classical baselines: HOG + linear SVM and PCA + random forest (scikit-learn / scikit-image)."""

from __future__ import annotations

import time

import numpy as np

from .metrics import Metrics, compute_metrics


def hog_features(images: np.ndarray) -> np.ndarray:
    """HOG descriptors (8x8 cells, 2x2 blocks, 9 orientations) of uint8 (N,48,48) faces."""
    from skimage.feature import hog

    return np.stack(
        [
            hog(
                im,
                orientations=9,
                pixels_per_cell=(8, 8),
                cells_per_block=(2, 2),
                block_norm="L2-Hys",
                feature_vector=True,
            )
            for im in images
        ]
    ).astype(np.float32)


def hog_svm(
    xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, seed: int = 0
) -> tuple[Metrics, float]:
    """HOG + standardized linear SVM (class-balanced weights); returns (metrics, seconds)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    t = time.time()
    ftr, fte = hog_features(xtr), hog_features(xte)
    svm = LinearSVC(C=0.01, class_weight="balanced", random_state=seed, max_iter=5000)
    clf = make_pipeline(StandardScaler(), CalibratedClassifierCV(svm, cv=3))
    clf.fit(ftr, ytr)
    probs = _full_probs(clf.predict_proba(fte), clf.classes_)
    return compute_metrics(yte, probs), time.time() - t


def pca_rf(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    yte: np.ndarray,
    seed: int = 0,
    n_components: int = 100,
    n_trees: int = 300,
) -> tuple[Metrics, float]:
    """PCA (whitened) on raw pixels + random forest (balanced subsample weights)."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    t = time.time()
    clf = make_pipeline(
        PCA(n_components=n_components, whiten=True, random_state=seed),
        RandomForestClassifier(
            n_estimators=n_trees,
            class_weight="balanced_subsample",
            min_samples_leaf=2,
            random_state=seed,
            n_jobs=1,
        ),
    )
    clf.fit(xtr.reshape(len(xtr), -1).astype(np.float32) / 255.0, ytr)
    p = clf.predict_proba(xte.reshape(len(xte), -1).astype(np.float32) / 255.0)
    return compute_metrics(yte, _full_probs(p, clf.classes_)), time.time() - t


def _full_probs(p: np.ndarray, classes: np.ndarray, k: int = 7) -> np.ndarray:
    out = np.zeros((len(p), k), np.float32)
    out[:, classes] = p
    return out
