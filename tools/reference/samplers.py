"""Reference decoding methods of tools/reference/SEMANTICS.md at temperature 0, one request at a time.

Each method takes a Task (the model and its special ids), a prompt and Settings, and returns a Result: the
generated tokens, the NFE, the tokens committed by each denoising step, and min_gap, the smallest margin by
which any decision it made was taken (see min_gap in tools/reference/README.md). Logits are rounded to
float32, as the engine gets them; softmax, confidences and entropies are float64.
"""

import math
from dataclasses import dataclass, field, fields

import torch

from model import bidirectional, block_causal, causal


@dataclass(frozen=True)
class Settings:
    method: str  # llada | dream | block_diffusion | autoregressive
    gen_length: int
    steps: int = 0
    block_length: int = 0
    sub_block_length: int = 0
    temperature: float = 0.0
    remasking: str = "low_confidence"  # low_confidence | margin | entropy
    commit: str = "schedule"  # schedule | threshold | factor | dynamic | entropy_bound
    threshold: float = 0.9
    factor: float = 1.0
    entropy_bound: float = 0.1
    cache: str = "none"  # none | prefix | dual
    cfg_scale: float = 0.0
    suppress_eos: bool = False
    suppress_eos_confidence: bool = False
    eps: float = 1e-3
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop_early: bool = True

    def to_json(self):
        """method, gen_length and temperature always; every other key only where it is not the default."""
        always = ("method", "gen_length", "temperature")
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in always or getattr(self, f.name) != f.default}


@dataclass
class Task:
    model: object  # a model.Transformer
    mask_id: int
    stop_ids: list  # stop_ids[0] = EOS, the rest EoT
    shift: int  # 1: logits(p) is the output row p - 1


@dataclass
class Result:
    tokens: list
    nfe: int
    min_gap: float
    committed_per_step: list


class Rejected(Exception):
    """The request would commit the MASK id: the methods leave that case undefined."""


@dataclass
class Run:
    """Bookkeeping of one request: forwards, decision gaps, committed counts."""
    task: Task
    nfe: int = 0
    min_gap: float = math.inf
    per_step: list = field(default_factory=list)

    def forward(self, x, start, end, visible, past=None, counts=True):
        """Forward canvas positions [start, end) of x; logits as float32. counts=False: a second sequence
        of a call already counted (CFG)."""
        self.nfe += int(counts)
        out = self.task.model.forward(x[start:end], torch.arange(start, end), visible, past)
        return out.logits.float(), out.kv

    def note(self, gap):
        self.min_gap = min(self.min_gap, float(gap))

    def commit(self, x, positions, tokens):
        for p, t in zip(positions, tokens):
            if t == self.task.mask_id:
                raise Rejected(f"position {p} would take the MASK id")
            x[p] = t
        self.per_step.append(len(positions))

    def result(self, tokens):
        return Result([int(t) for t in tokens], self.nfe, self.min_gap, self.per_step)


# ---- token rules ------------------------------------------------------------------------------------------

@dataclass
class Predictions:
    """Per candidate position: x0, its score for the commit rule (higher = surer) and its entropy."""
    tokens: list
    scores: list
    entropies: list


def _argmax(row, run):
    """Lowest-id argmax of a logit row, noting the top1 - top2 gap."""
    top = torch.topk(row.double(), 2).values
    run.note(top[0] - top[1])
    return int(torch.argmax(row))


def _entropy(p):
    return float(-torch.xlogy(p, p).sum())


def argmax_predictions(rows, run, settings):
    """LLaDA / SDAR / Fast-dLLM: x0 = argmax(l), score p[x0]; the llada EOS flags."""
    eos, eots = run.task.stop_ids[0], run.task.stop_ids[1:]
    if settings.suppress_eos:
        rows = rows.clone()
        rows[:, eos] = -math.inf
    tokens = [_argmax(row, run) for row in rows]
    probabilities = torch.softmax(rows.double(), -1)
    confidence_rows = rows
    if settings.suppress_eos_confidence:  # at T = 0 LLaDA's -inf lands in the logits themselves
        confidence_rows = rows.clone()
        confidence_rows[:, [eos] + eots] = -math.inf
    confidence = torch.softmax(confidence_rows.double(), -1)
    scores = [float(confidence[i, t]) for i, t in enumerate(tokens)]
    return Predictions(tokens, scores, [_entropy(p) for p in probabilities])


def _dream_filter(row, settings, run):
    """Dream's top_p then top_k on one row: removed logits become -inf. Notes the deciding cut's margin."""
    values, order = torch.sort(row, descending=True, stable=True)
    keep, top_p_margin = len(row), None
    if settings.top_p < 1:
        cumulative = torch.cumsum(torch.softmax(values.double(), 0), 0)
        over = (cumulative > settings.top_p).nonzero()
        last = int(over[0]) if len(over) else len(row) - 1  # the first index past top_p is still kept
        keep = last + 1
        below = settings.top_p - float(cumulative[last - 1]) if last > 0 else math.inf
        top_p_margin = min(float(cumulative[last]) - settings.top_p, below)
    if 0 < settings.top_k < keep:
        kth = values[settings.top_k - 1]
        keep = int((values >= kth).sum())  # ties with the k-th are kept
        run.note(kth.double() - values[settings.top_k].double())
    elif top_p_margin is not None:
        run.note(top_p_margin)
    filtered = torch.full_like(row, -math.inf)
    filtered[order[:keep]] = row[order[:keep]]
    return filtered


def dream_predictions(rows, run, settings):
    """Dream: p = softmax(filtered l), x0 = argmax p; score per remasking."""
    tokens, scores, entropies = [], [], []
    for row in rows:
        filtered = _dream_filter(row, settings, run)
        tokens.append(_argmax(filtered, run))
        p = torch.softmax(filtered.double(), 0)
        if settings.remasking == "low_confidence":
            scores.append(float(p.max()))
        elif settings.remasking == "margin":
            top = torch.topk(p, 2).values
            scores.append(float(top[0] - top[1]))
        elif settings.remasking == "entropy":
            scores.append(float((p * torch.log(p + 1e-10)).sum()))
        else:
            raise ValueError(f"remasking {settings.remasking} has no temperature-0 reference")
        entropies.append(_entropy(p))
    return Predictions(tokens, scores, entropies)


# ---- commit rules -----------------------------------------------------------------------------------------

def _ranked(scores):
    """Candidate indices by descending score; ties keep the lower position (candidates are in position order)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def _note_rank_gap(run, ordered, m):
    """The margin between the last taken and the first left of a ranking (nothing to note when all or none
    are taken). Exact zeros (suppressed EOS/EoT) tie in every precision and are ordered by position."""
    if 0 < m < len(ordered):
        a, b = ordered[m - 1], ordered[m]
        if not (a == 0.0 and b == 0.0):
            run.note(a - b)


def _top(run, scores, k):
    order = _ranked(scores)
    k = min(k, len(order))
    _note_rank_gap(run, [scores[i] for i in order], k)
    return order[:k]


def _threshold(run, scores, tau):
    order = _ranked(scores)
    ordered = [scores[i] for i in order]
    for value in ordered[1:]:
        run.note(abs(value - tau))
    if len(order) > 1 and ordered[0] < tau:  # only then does the identity of the top one matter
        _note_rank_gap(run, ordered, 1)
    return [order[0]] + [i for i in order[1:] if scores[i] >= tau]


def _factor(run, scores, f):
    order = _ranked(scores)
    ordered = [scores[i] for i in order]
    n = len(ordered)
    m = n - 1
    for i in range(1, n):  # rank 0 has threshold -1
        bound = 1 - f / (i + 2)
        run.note(abs(ordered[i] - bound))
        if ordered[i] < bound:
            m = i
            break
    if m == 0 or m == n - 1:
        m += 1
    _note_rank_gap(run, ordered, m)
    return order[:m]


def _dynamic(run, scores, tau, k):
    for value in scores:
        run.note(abs(value - tau))
    high = [i for i in _ranked(scores) if scores[i] > tau]
    return high if len(high) >= min(k, len(scores)) else _top(run, scores, k)


def _entropy_bound(run, entropies, bound):
    order = _ranked([-e for e in entropies])  # ascending entropy
    ordered = [entropies[i] for i in order]
    cumulative, total = [], 0.0
    for e in ordered:
        total += e
        cumulative.append(total)
        run.note(abs(total - bound))
    m = max(1, min(sum(1 for c in cumulative if c < bound), len(order)))
    _note_rank_gap(run, [-e for e in ordered], m)
    return order[:m]


def choose(run, settings, predictions, k):
    """Indices of the candidates to commit under settings.commit; k is the schedule's count."""
    rule, scores = settings.commit, predictions.scores
    if rule == "schedule":
        return _top(run, scores, k)
    if rule == "threshold":
        return _threshold(run, scores, settings.threshold)
    if rule == "factor":
        return _factor(run, scores, settings.factor)
    if rule == "dynamic":
        return _dynamic(run, scores, settings.threshold, k)
    if rule == "entropy_bound":
        return _entropy_bound(run, predictions.entropies, settings.entropy_bound)
    raise ValueError(f"commit rule {rule}")


def split_evenly(n, steps):
    """Remainder first: n // steps each, the first n % steps one more."""
    return [n // steps + (1 if i < n % steps else 0) for i in range(steps)]


def _step(run, x, positions, rows, settings, k, predict):
    """Predict the candidate positions from their logit rows and commit the chosen ones."""
    predictions = predict(rows, run, settings)
    chosen = sorted(choose(run, settings, predictions, k))
    run.commit(x, [positions[i] for i in chosen], [predictions.tokens[i] for i in chosen])


def _masked(x, start, end, mask_id):
    return [p for p in range(start, end) if x[p] == mask_id]


def _output(x, start, end, stop_ids, stop):
    """x[start:end], cut after the first stop id when stop is set."""
    tokens = [int(t) for t in x[start:end]]
    if stop:
        for i, t in enumerate(tokens):
            if t in stop_ids:
                return tokens[:i + 1]
    return tokens


def _has_stop(x, start, end, stop_ids):
    return any(int(t) in stop_ids for t in x[start:end])


# ---- method llada -----------------------------------------------------------------------------------------

def _llada_full_logits(run, x, prompt_length, settings):
    """A forward of the whole canvas; with CFG the unconditional canvas joins the same call."""
    logits, kv = run.forward(x, 0, len(x), bidirectional)
    if settings.cfg_scale > 0:
        unconditional = x.clone()
        unconditional[:prompt_length] = run.task.mask_id
        uncond_logits, _ = run.forward(unconditional, 0, len(x), bidirectional, counts=False)
        logits = uncond_logits + (settings.cfg_scale + 1) * (logits - uncond_logits)
    return logits, kv


def _llada_logits(run, x, prompt_length, settings, step, start, end, kv):
    """(logit rows, canvas row of the first one, K/V to keep) for one step of the block [start, end)."""
    first = start - run.task.shift
    if settings.cache == "none" or step == 0:
        logits, full = _llada_full_logits(run, x, prompt_length, settings)
        if settings.cache == "prefix":
            full = full.take(full.positions < first)
        return logits, 0, full
    if settings.cache == "prefix":
        logits, _ = run.forward(x, first, len(x), bidirectional, kv)
        return logits, first, kv
    stale = kv.take((kv.positions < first) | (kv.positions >= end))  # the block's K/V are recomputed
    logits, _ = run.forward(x, first, end, bidirectional, stale)
    return logits, first, kv


def llada(task, prompt, settings):
    G, BL, mask = settings.gen_length, settings.block_length, task.mask_id
    assert G % BL == 0 and settings.steps % (G // BL) == 0
    assert settings.cfg_scale == 0 or settings.cache == "none"
    steps_per_block = settings.steps // (G // BL)
    P = len(prompt)
    x = torch.tensor(prompt + [mask] * G)
    run = Run(task)
    for b in range(G // BL):
        start, end = P + b * BL, P + (b + 1) * BL
        counts = split_evenly(len(_masked(x, start, end, mask)), steps_per_block)
        step, kv = 0, None
        while positions := _masked(x, start, end, mask):
            logits, first, kv = _llada_logits(run, x, P, settings, step, start, end, kv)
            rows = logits[[p - task.shift - first for p in positions]]
            k = counts[step] if step < len(counts) else None  # only the schedule rule reads it
            _step(run, x, positions, rows, settings, k, argmax_predictions)
            step += 1
        if settings.stop_early and _has_stop(x, P, end, task.stop_ids):
            return run.result(_output(x, P, P + G, task.stop_ids, True))
    return run.result(_output(x, P, P + G, task.stop_ids, False))


# ---- method dream -----------------------------------------------------------------------------------------

def _dream_count(run, masked, ts, i, steps):
    """Dream's number of tokens to reveal at step i, in float32 as Dream computes it."""
    if i == steps - 1:
        return masked
    value = torch.tensor(float(masked), dtype=torch.float32) * (1 - ts[i + 1] / ts[i])
    v = float(value)
    run.note(min(v - math.floor(v), math.floor(v) + 1 - v))  # int() truncates: distance to an integer
    return int(value)


def dream(task, prompt, settings):
    G, S, mask = settings.gen_length, settings.steps, task.mask_id
    P = len(prompt)
    x = torch.tensor(prompt + [mask] * G)
    ts = torch.linspace(1, settings.eps, S + 1)
    run = Run(task)
    for i in range(S):
        positions = _masked(x, 0, len(x), mask)
        if not positions:  # nothing left to reveal: no forward
            continue
        logits, _ = run.forward(x, 0, len(x), bidirectional)
        rows = logits[[p - task.shift for p in positions]]
        k = _dream_count(run, len(positions), ts, i, S) if settings.commit == "schedule" else None
        _step(run, x, positions, rows, settings, k, dream_predictions)
    return run.result(_output(x, P, P + G, task.stop_ids, False))


# ---- method block_diffusion -------------------------------------------------------------------------------

def block_diffusion(task, prompt, settings):
    B, G, S, mask = settings.block_length, settings.gen_length, settings.steps, task.mask_id
    SB = settings.sub_block_length or B
    P = len(prompt)
    T = -(-(P + G) // B) * B
    x = torch.tensor(prompt + [mask] * (T - P))
    visible = block_causal(B)
    run = Run(task)
    F = (P // B) * B
    cache, last_row = None, None
    if F > 0:
        logits, cache = run.forward(x, 0, F, visible)
        last_row = logits[-1]
    for j in range(F // B, T // B):
        start, end = j * B, (j + 1) * B
        if task.shift == 1 and x[start] == mask and j > 0:  # AR first token from the previous forward's last row
            token = _argmax(last_row, run)
            if token == mask:
                raise Rejected(f"position {start} would take the MASK id")
            x[start] = token
        for sub_start in range(start, end, SB):
            sub_end = min(sub_start + SB, end)
            counts = split_evenly(sub_end - sub_start, S)
            step = 0
            while positions := _masked(x, sub_start, sub_end, mask):
                logits, _ = run.forward(x, start, end, visible, cache)
                rows = logits[[p - task.shift - start for p in positions]]
                k = min(counts[step] if step < S else 1, len(positions))
                _step(run, x, positions, rows, settings, k, argmax_predictions)
                step += 1
        stop = settings.stop_early and _has_stop(x, P, min(P + G, end), task.stop_ids)
        if stop or j == T // B - 1:
            return run.result(_output(x, P, P + G, task.stop_ids, stop))
        logits, kv = run.forward(x, start, end, visible, cache)  # commit: the block's K/V join the cache
        cache = kv if cache is None else cache.join(kv)
        last_row = logits[-1]
    raise AssertionError("unreachable: the last block returns")


# ---- method autoregressive --------------------------------------------------------------------------------

def _repetition_penalty(row, seen, r):
    """HF RepetitionPenaltyLogitsProcessor on one float32 row."""
    if r == 1.0:
        return row
    ids = torch.tensor(sorted(set(seen)))
    score = row[ids]
    row = row.clone()
    row[ids] = torch.where(score < 0, score * r, score / r)
    return row


def autoregressive(task, prompt, settings):
    P = len(prompt)
    run = Run(task)
    x = torch.tensor(prompt + [0] * settings.gen_length)
    logits, cache = run.forward(x, 0, P, causal)
    row, generated = logits[-1], []
    while True:
        token = _argmax(_repetition_penalty(row, prompt + generated, settings.repetition_penalty), run)
        generated.append(token)
        x[P + len(generated) - 1] = token
        if (settings.stop_early and token in task.stop_ids) or len(generated) == settings.gen_length:
            return run.result(generated)
        position = P + len(generated) - 1
        logits, kv = run.forward(x, position, position + 1, causal, cache)
        cache, row = cache.join(kv), logits[-1]


METHODS = {"llada": llada, "dream": dream, "block_diffusion": block_diffusion, "autoregressive": autoregressive}


def generate(task, prompt, settings):
    assert settings.temperature == 0, "the references are greedy"
    return METHODS[settings.method](task, list(prompt), settings)
