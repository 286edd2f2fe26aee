"""The landing page's picture: a digit's pixels feeding a network.

docs/conf.py calls ``write(path)`` at build time (nothing is committed): a
handwritten digit from scikit-learn's bundled data, its 64 pixels as the
input layer of a small cymlp network, and what the 16 hidden units learned,
each unit's 64 first-layer weights drawn as an 8x8 image. No network access.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from cymlp import MLPClassifier  # noqa: E402


def write(path):
    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    # a strong L2 penalty (alpha) smooths the weights into stroke-like patterns
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, alpha=1.0,
                        max_iter=60, random_state=0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
    sample = 4  # a "4"
    pixels = X[sample]
    proba = clf.predict_proba(pixels[None, :])[0]
    hidden = clf.transform(pixels[None, :])[0]

    fig = plt.figure(figsize=(10, 3.6), layout="constrained")
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1.7, 1.35])

    # 1. the digit
    ax = fig.add_subplot(grid[0])
    ax.imshow(pixels.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title("a handwritten digit:\n8x8 = 64 pixels", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])

    # 2. the network: 64 input units (the pixels), 16 hidden, 10 outputs
    ax = fig.add_subplot(grid[1])
    y_in = np.linspace(1, 0, 64)
    y_hid = np.linspace(0.9, 0.1, 16)
    y_out = np.linspace(0.85, 0.15, 10)
    x_in, x_hid, x_out = 0.0, 1.0, 2.0
    weights = clf.coefs_[0]
    strong = np.abs(weights) > np.quantile(np.abs(weights), 0.9)
    for i, j in zip(*np.nonzero(strong)):
        ax.plot([x_in, x_hid], [y_in[i], y_hid[j]], color="0.6", lw=0.3,
                alpha=0.25 + 0.6 * pixels[i], zorder=1)
    for j in range(16):
        for k in range(10):
            ax.plot([x_hid, x_out], [y_hid[j], y_out[k]], color="0.75", lw=0.3,
                    alpha=0.5, zorder=1)
    ax.scatter(np.full(64, x_in), y_in, c=pixels, cmap="gray_r", vmin=0, vmax=1,
               marker="s", s=18, edgecolors="0.5", linewidths=0.4, zorder=2)
    ax.scatter(np.full(16, x_hid), y_hid, c=hidden, cmap="Blues", s=60,
               edgecolors="0.3", linewidths=0.5, zorder=2)
    ax.scatter(np.full(10, x_out), y_out, c=proba, cmap="Oranges", vmin=0, vmax=1,
               s=90, edgecolors="0.3", linewidths=0.5, zorder=2)
    for k in range(10):
        ax.text(x_out + 0.12, y_out[k], str(k), va="center", fontsize=8,
                fontweight="bold" if k == proba.argmax() else "normal")
    for x, label in [(x_in, "input layer\n64 pixels"), (x_hid, "hidden layer\n16 units"),
                     (x_out, "output\n10 digits")]:
        ax.text(x, -0.1, label, ha="center", va="top", fontsize=9)
    ax.set_xlim(-0.3, 2.35)
    ax.set_ylim(-0.3, 1.05)
    ax.set_axis_off()
    ax.set_title(f"the pixels feed the first layer (predicted: {proba.argmax()})",
                 fontsize=10)

    # 3. what each hidden unit learned: its 64 input weights as an 8x8 image
    ax = fig.add_subplot(grid[2])
    tiles = np.full((4 * 9 - 1, 4 * 9 - 1), np.nan)
    for j in range(16):
        r, c = divmod(j, 4)
        w = weights[:, j].reshape(8, 8)
        tiles[r * 9:r * 9 + 8, c * 9:c * 9 + 8] = w / np.abs(w).max()
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("white")
    ax.imshow(tiles, cmap=cmap, vmin=-1, vmax=1)
    ax.set_title("what the 16 hidden units learned:\neach one's 64 weights as 8x8",
                 fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel("red: ink there excites the unit; blue: inhibits it", fontsize=8)

    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    write("seed.png")
