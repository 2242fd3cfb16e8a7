"""Draw an overview diagram of the BYOL method.

Redraw with:

    python scripts/draw_diagram.py              # writes diagram.png at the repo root
    python scripts/draw_diagram.py out.png      # writes to a custom path

Pure matplotlib (Agg backend), no network access, fully deterministic.
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ONLINE = ("#dbe9fb", "#2f6db5")   # (fill, edge) for the online branch
TARGET = ("#fde6d4", "#c8651b")   # (fill, edge) for the target branch
NEUTRAL = ("#eeeeee", "#555555")
LOSS = ("#e3f4e1", "#2e7d32")

Y_ON, Y_TG, Y_MID = 7.6, 2.4, 5.0  # row heights (data units)


def box(ax, x, y, text, colours, w=1.9, h=1.1, fs=11, bold=False, round_=0.25):
    """Rounded box centred at (x, y); returns its half extents for arrows."""
    fill, edge = colours
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle=f"round,pad=0.02,rounding_size={round_}",
                                fc=fill, ec=edge, lw=1.8, zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fs, zorder=3,
            fontweight="bold" if bold else "normal")
    return x, y, w / 2, h / 2


def arrow(ax, a, b, colour="#333333", style="-|>", ls="-", rad=0.0, lw=1.6):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=14,
                                 color=colour, lw=lw, ls=ls, zorder=1,
                                 connectionstyle=f"arc3,rad={rad}",
                                 shrinkA=0, shrinkB=0))


def right(b):
    return (b[0] + b[2], b[1])


def left(b):
    return (b[0] - b[2], b[1])


def chain(ax, y, items, colours):
    """Draw a left-to-right chain of (x, label, kind) boxes joined by arrows."""
    boxes = []
    for x, label, kind, *fs in items:
        if kind == "net":      # a network (or sg op): wide, strongly coloured
            boxes.append(box(ax, x, y, label, colours, w=2.05, h=1.2,
                             fs=fs[0] if fs else 12))
        else:                  # a representation / activation: small, white
            boxes.append(box(ax, x, y, label, ("white", colours[1]),
                             w=1.2, h=0.8, fs=12, round_=0.35))
    for a, b in zip(boxes, boxes[1:]):
        arrow(ax, right(a), left(b), colour=colours[1])
    return boxes


def draw(out_path):
    fig, ax = plt.subplots(figsize=(12, 5), dpi=150)
    ax.set_xlim(0.1, 24.0)
    ax.set_ylim(0.55, 9.45)
    ax.axis("off")

    # Input image and the two augmentations.
    img = box(ax, 1.1, Y_MID, "image\n$x$", NEUTRAL, w=1.6, h=1.5, fs=12)
    t_on = box(ax, 3.6, Y_ON, "$t \\sim \\mathcal{T}$", NEUTRAL, w=1.6, h=1.0)
    t_tg = box(ax, 3.6, Y_TG, "$t' \\sim \\mathcal{T}'$", NEUTRAL, w=1.6, h=1.0)
    arrow(ax, (img[0] + img[2], Y_MID + 0.3), left(t_on), rad=-0.2)
    arrow(ax, (img[0] + img[2], Y_MID - 0.3), left(t_tg), rad=0.2)
    ax.text(3.6, Y_MID, "augment", ha="center", va="center", fontsize=10,
            color="#555555", style="italic")

    # Online branch (top).
    on = chain(ax, Y_ON, [
        (5.7, "$v$", "rep"), (7.8, "encoder\n$f_\\theta$", "net"),
        (9.9, "$y$", "rep"), (12.0, "projector\n$g_\\theta$", "net"),
        (14.1, "$z$", "rep"), (16.2, "predictor\n$q_\\theta$", "net"),
        (18.3, "$q_\\theta(z)$", "rep")], ONLINE)
    arrow(ax, right(t_on), left(on[0]))
    # Target branch (bottom).
    tg = chain(ax, Y_TG, [
        (5.7, "$v'$", "rep"), (7.8, "encoder\n$f_\\xi$", "net"),
        (9.9, "$y'$", "rep"), (12.0, "projector\n$g_\\xi$", "net"),
        (14.1, "$z'$", "rep"), (16.2, "stop-gradient\n(sg)", "net", 10),
        (18.3, "sg$(z')$", "rep")], TARGET)
    arrow(ax, right(t_tg), left(tg[0]))

    # Branch titles.
    ax.text(5.15, Y_ON + 1.35, "ONLINE network  (parameters $\\theta$, trained by SGD)",
            fontsize=12, fontweight="bold", color=ONLINE[1], va="center")
    ax.text(5.15, Y_TG - 1.35, "TARGET network  (parameters $\\xi$, no gradients)",
            fontsize=12, fontweight="bold", color=TARGET[1], va="center")

    # Exponential moving average: online weights -> target weights.
    for x in (7.8, 12.0):
        arrow(ax, (x, Y_ON - 0.62), (x, Y_TG + 0.62), colour="#7a3db8",
              ls=(0, (5, 3)), lw=1.6)
    ax.text(9.9, Y_MID + 0.25, "exponential moving average",
            ha="center", va="center", fontsize=11, color="#7a3db8", fontweight="bold",
            bbox=dict(fc="white", ec="none", pad=1.5))
    ax.text(9.9, Y_MID - 0.45, "$\\xi \\leftarrow \\tau\\,\\xi + (1-\\tau)\\,\\theta$",
            ha="center", va="center", fontsize=12, color="#7a3db8",
            bbox=dict(fc="white", ec="none", pad=1.5))

    # Loss on the right.
    loss = box(ax, 21.65, Y_MID,
               "loss\n$= 2 - 2\\cos\\left(q_\\theta(z),\\ \\mathrm{sg}(z')\\right)$"
               "\n\nsymmetrised over the\ntwo views ($v \\leftrightarrow v'$)",
               LOSS, w=4.2, h=2.9, fs=11)
    arrow(ax, right(on[-1]), (loss[0] - 0.6, loss[1] + loss[3]), colour=LOSS[1], rad=-0.25)
    arrow(ax, right(tg[-1]), (loss[0] - 0.6, loss[1] - loss[3]), colour=LOSS[1], rad=0.25)
    ax.text(loss[0], Y_ON + 0.2, "gradient flows\nto $\\theta$ only", ha="center",
            va="bottom", fontsize=9.5, color="#555555", style="italic")

    fig.tight_layout(pad=0.3)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=150, metadata={"Software": None})
    plt.close(fig)
    return out_path


if __name__ == "__main__":
    default = Path(__file__).resolve().parent.parent / "diagram.png"
    print(f"wrote {draw(sys.argv[1] if len(sys.argv) > 1 else default)}")
