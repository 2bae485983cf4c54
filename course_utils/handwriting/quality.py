"""How well a writer writes, measured: held-out texts, shape distance to the font (DTW), alignment
completion, and legibility (the character error rate of the recognizer reading the lines back).
"""
from __future__ import annotations

import torch

from .synthesis import HandwritingSynthesizer, Writing, write


def alignment_completed(writing: Writing) -> bool:
    """Did the window pass every character in order, and did the line stop by itself?

    The argmax of phi over the characters must visit u = 1, ..., U, first reaching each one after
    the one before it; and the sampler must have stopped because the window passed the end.
    """
    U = len(writing.text)
    if not writing.stopped or len(writing.phi) == 0:
        return False
    focus = writing.phi[:, :U].argmax(-1)  # (N,)
    first = []
    for u in range(U):
        hits = (focus == u).nonzero()
        if len(hits) == 0:
            return False
        first.append(int(hits[0]))
    return all(a <= b for a, b in zip(first, first[1:]))


def shape_distance(a, b, *, spacing: float = 0.05) -> float:
    """Dynamic-time-warping distance between two written lines (T, 3) offsets, in line heights.

    Each line is turned into absolute points, centred, scaled to unit height (the standard deviation
    of y) and resampled every `spacing` along the pen path; the distance is the mean length of the
    matched pairs on the cheapest monotone alignment (librosa's DTW).
    """
    import librosa
    import numpy as np

    from .strokes import to_stroke_list

    def trace(offsets):
        strokes = [s for s in to_stroke_list(np.asarray(offsets, dtype=np.float64)) if len(s) > 0]
        if not strokes:
            raise ValueError("a line has no points to compare.")
        pts = np.concatenate(strokes)
        centre, height = pts.mean(0), max(pts[:, 1].std(), 1e-9)
        out = []
        for s in strokes:
            s = (s - centre) / height
            d = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(s, axis=0), axis=1))])
            at = np.arange(0.0, d[-1] + 1e-12, spacing)
            out.append(np.column_stack([np.interp(at, d, s[:, 0]), np.interp(at, d, s[:, 1])]))
        return np.concatenate(out)

    pa, pb = trace(a), trace(b)
    cost, path = librosa.sequence.dtw(X=pa.T, Y=pb.T, metric="euclidean")
    return float(cost[-1, -1] / len(path))


# ---------------------------------------------------------------- measured quality
def held_out_texts(count: int = 50, *, seed: int = 1, min_chars: int = 10, max_chars: int = 30) -> list[str]:
    """`count` text lines from the Penn Treebank validation split: sentences no writer was trained on."""
    import numpy as np

    from ..text import load_ptb
    from .synthetic import ptb_lines

    lines = ptb_lines(load_ptb("valid"), min_chars=min_chars, max_chars=max_chars, punctuate=seed)
    if count > len(lines):
        raise ValueError(f"asked for {count} held-out lines; the validation split has {len(lines)}.")
    return [lines[i] for i in sorted(np.random.default_rng(seed).choice(len(lines), count, replace=False))]


def clean_distance(offsets, text: str) -> float:
    """`shape_distance` from a written line to the plain font rendering of its text (no slant, warp or
    jitter), the smallest over the three fonts the synthetic writers use."""
    from .synthetic import FONTS, WriterStyle, write as font_write

    plain = dict(slant=0.0, drift=0.0, warp=0.0, jitter=0.0, letter_spacing=0.0, word_spacing=0.0)
    return min(shape_distance(offsets, font_write(text, WriterStyle(font=f, **plain))) for f in FONTS)


def write_all(model: HandwritingSynthesizer, texts: list[str], *, bias: float, seed: int = 0, batch_size: int = 25,
              **options) -> list[Writing]:
    """Write every text once, `batch_size` at a time, from one seeded generator. Lines that hit the step cap
    are kept as they are (`Writing.stopped` is False) and not warned about: the measures count them."""
    import warnings

    g, writings = torch.Generator().manual_seed(seed), []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*reached the cap of max_steps_per_char")
        for i in range(0, len(texts), batch_size):
            writings += write(model, texts[i:i + batch_size], bias=bias, generator=g, **options)
    return writings


def quality_report(model: HandwritingSynthesizer, scale, texts: list[str], *, bias: float = 0.5,
                   seed: int = 0, batch_size: int = 25) -> dict:
    """Write every text once and measure: the fraction of lines whose alignment completes
    (`alignment_completed`), and the mean `clean_distance` of the written lines, next to the same
    distance for lines of a second synthetic writer (the natural variation between writers)."""
    import numpy as np

    from .synthetic import random_style, write as font_write

    writings = write_all(model, texts, bias=bias, seed=seed, batch_size=batch_size)
    rng = np.random.default_rng(seed)
    model_dist = [clean_distance(scale.invert(w.strokes.numpy()), w.text) for w in writings]
    writer_dist = [clean_distance(font_write(t, random_style(rng)), t) for t in texts]
    return {
        "lines": len(texts),
        "bias": bias,
        "alignment_completion": float(np.mean([alignment_completed(w) for w in writings])),
        "stopped_by_itself": float(np.mean([w.stopped for w in writings])),
        "dtw_to_font": float(np.mean(model_dist)),
        "dtw_second_writer_to_font": float(np.mean(writer_dist)),
        "writings": writings,
    }




# ---------------------------------------------------------------- legibility: read it back
def legibility(writer: HandwritingSynthesizer, scale, reader, lines: list[dict], *,
               biases=(0.0, 0.5, 1.0, 2.0), seed: int = 0, draws: int = 1, batch_size: int = 25,
               finish_stroke: bool = True, prime: tuple | None = None) -> dict:
    """Character error rates of `reader` (a `recognizer.Recognizer`) on held-out lines.

    lines: [{'text', 'strokes' (T, 3) in font units}] such as `text_sources.held_out_set(100)`, the synthetic
    writers' own renderings. Their CER is the floor (what the reader gets wrong on clean handwriting); the
    writer then writes every text `draws` times at each bias (draw k from seed + k; each line ends at the
    first pen lift after the window passes the end, `write(finish_stroke=True)`), and its lines are read back.
    The CER of a bias is the mean over the draws: one draw of 100 lines varies by a few hundredths from seed
    to seed (0.08 to 0.12 at bias 1 for one writer), as much as neighbouring biases differ. Lines that hit the writer's step cap are read as they
    are (what a reader would get) and counted in 'unfinished' (over all draws) instead of warned about.
    `prime` = (its text, its strokes (T, 3) in font units): every line is written primed with it (`write`).
    -> {'lines', 'draws', 'synthetic_cer', 'cer': {bias: mean CER}, 'cer_draws': {bias: [CER of each draw]},
        'unfinished': {bias: count}, 'read': {bias: [str]}, 'writings': {bias: [Writing]}} (read and
        writings: the first draw)"""
    from .recognizer import character_error_rate

    if not lines:
        raise ValueError("no lines to read: give at least one {'text', 'strokes'} line.")
    if draws < 1:
        raise ValueError(f"draws={draws}: write every line at least once (draws >= 1).")
    texts = [ln["text"] for ln in lines]
    options = {"finish_stroke": finish_stroke}
    if prime is not None:
        options["prime"] = (prime[0], torch.from_numpy(scale.apply(prime[1])))
    out = {"lines": len(lines), "draws": draws, "synthetic_cer": reader.cer(texts, [ln["strokes"] for ln in lines]),
           "cer": {}, "cer_draws": {}, "unfinished": {}, "read": {}, "writings": {}}
    for bias in biases:
        out["cer_draws"][bias], out["unfinished"][bias] = [], 0
        for k in range(draws):
            writings = write_all(writer, texts, bias=bias, seed=seed + k, batch_size=batch_size, **options)
            read = reader.read([scale.invert(w.strokes.numpy()) for w in writings])
            out["cer_draws"][bias].append(character_error_rate(texts, read))
            out["unfinished"][bias] += sum(not w.stopped for w in writings)
            if k == 0:
                out["read"][bias], out["writings"][bias] = read, writings
        out["cer"][bias] = sum(out["cer_draws"][bias]) / draws
    return out


def style_features(offsets, text: str) -> dict[str, float]:
    """Two measures of a hand on one written line, (T, 3) offsets: 'slant', the mean dx / dy of the pen's
    downward strokes (a writer who shears x += s * y has slant s plus the pen's own drift), and 'width',
    the line's width over the standard deviation of its y, per character of `text`."""
    import numpy as np

    from .strokes import to_stroke_list

    strokes = [s for s in to_stroke_list(np.asarray(offsets, dtype=np.float64)) if len(s) > 1]
    if not strokes or not text:
        raise ValueError("give a written line with at least one stroke and its text.")
    points = np.concatenate(strokes)
    steps = np.concatenate([np.diff(s, axis=0) for s in strokes])
    down = steps[:, 1] < -0.7 * np.linalg.norm(steps, axis=1)  # within 45 degrees of straight down
    if not down.any():
        raise ValueError("the line has no downward strokes to measure a slant on.")
    height = max(points[:, 1].std(), 1e-9)
    return {"slant": float(steps[down, 0].sum() / steps[down, 1].sum()),
            "width": float(np.ptp(points[:, 0]) / height / len(text))}


def style_transfer(writer: HandwritingSynthesizer, scale, styles: list, prime_text: str, text: str, *,
                   bias: float = 1.0, seed: int = 0, redraws: int = 3) -> dict:
    """Does priming carry a writer's style? For each synthetic writer style in `styles`: prime the writer
    with that style's rendering of `prime_text`, write `text`, and measure the shape distance from the
    primed line to every style's own rendering of `text`.

    Also the `style_features` of each primed line and of its primer writer's rendering of `text`, and their
    correlation over the styles: does the primed line lean and spread as its primer's writer does?

    What a perfect copier of the hand would score (`same_writer`): each style writes `text` again with new
    randomness (drift, warp, pen noise; `redraws` times), measured against the same renderings. Writers who
    share a font and differ by a few hundredths of slant are not told apart even then.

    -> {'distance': (S, S) array, row = primer style, column = rendering compared with; 'own_nearest':
    the fraction of rows whose smallest distance is their own style's; 'own_below_others': the fraction
    of rows whose own distance is below the mean of the others; 'own', 'others': the mean distance to the
    primer's own rendering and to the other styles'; 'features': {name: (S, 2) array of (primer writer,
    primed line)}; 'correlation': {name: r over the styles}; 'writings': the primed lines; 'same_writer':
    'own_nearest', 'own_below_others', 'own', 'others' of the redrawn renderings, averaged over the redraws;
    'distinguishable': the same four for the primed lines on the writers the redraws tell apart
    (`distinguishable`), where a perfect copier scores 1, with their indices as 'writers'}"""
    from dataclasses import replace

    import numpy as np

    from .synthetic import write as font_write

    if len(styles) < 2:
        raise ValueError(f"give at least two writer styles to compare, got {len(styles)}.")
    renderings = [font_write(text, s) for s in styles]
    distance, writings, features = np.zeros((len(styles), len(styles))), [], {"slant": [], "width": []}
    for i, style in enumerate(styles):
        primer = torch.from_numpy(scale.apply(font_write(prime_text, style)))
        w = write(writer, text, bias=bias, prime=(prime_text, primer), generator=torch.Generator().manual_seed(seed))
        writings.append(w)
        line = scale.invert(w.strokes.numpy())
        distance[i] = [shape_distance(line, r) for r in renderings]
        own, got = style_features(renderings[i], text), style_features(line, text)
        for name in features:
            features[name].append((own[name], got[name]))
    features = {name: np.array(pairs) for name, pairs in features.items()}

    def summary(d):  # (S, S) distances, row = line compared, column = the style whose rendering it is compared with
        off = ~np.eye(len(d), dtype=bool)
        return {"own_nearest": float(np.mean(d.argmin(1) == np.arange(len(d)))),
                "own_below_others": float(np.mean(np.diag(d) < np.nanmean(np.where(off, d, np.nan), axis=1))),
                "own": float(np.mean(np.diag(d))), "others": float(d[off].mean())}

    redrawn = np.array([[[shape_distance(font_write(text, replace(s, seed=s.seed + 1000 * (k + 1))), r)
                          for r in renderings] for s in styles] for k in range(redraws)])  # (redraws, S, S)
    same_writer, told_apart = {}, {}
    if redraws:
        per_redraw = [summary(d) for d in redrawn]
        same_writer = {key: float(np.mean([r[key] for r in per_redraw])) for key in per_redraw[0]}
        keep = distinguishable(redrawn)
        told_apart = {"writers": keep, **(summary(distance[np.ix_(keep, keep)]) if len(keep) > 1 else {})}
    return {"distance": distance, **summary(distance), "features": features,
            "correlation": {k: float(np.corrcoef(v.T)[0, 1]) for k, v in features.items()},
            "writings": writings, "same_writer": same_writer, "distinguishable": told_apart}


def distinguishable(redrawn) -> list[int]:
    """The writers a shape distance can tell apart at all. `redrawn` (R, S, S): the distance from R redraws
    of each writer's line (row) to every writer's rendering (column). Drop writers one at a time - the one
    most often taken for another (the nearest rendering of another writer's redraw: 1 each; its own redraw
    nearer another's rendering: 1/2 each; the first of equals) - until, among those left, every redraw is
    nearest its own writer's rendering. -> the indices left, in order (a perfect copier scores 1 on them)."""
    import numpy as np

    redrawn = np.asarray(redrawn, dtype=float)
    if redrawn.ndim != 3 or redrawn.shape[1] != redrawn.shape[2]:
        raise ValueError(f"redrawn must be (redraws, writers, writers) distances, got shape {redrawn.shape}.")
    keep = list(range(redrawn.shape[1]))
    while len(keep) > 1:
        nearest = redrawn[:, keep][:, :, keep].argmin(2)  # (R, S'): the rendering each redraw is nearest
        if (nearest == np.arange(len(keep))).all():
            break
        blame = np.zeros(len(keep))
        for row in nearest:
            for i, j in enumerate(row):
                if j != i:
                    blame[j] += 1.0
                    blame[i] += 0.5
        keep.pop(int(blame.argmax()))
    return keep
