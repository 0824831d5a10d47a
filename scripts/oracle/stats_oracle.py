#!/usr/bin/python3
"""Independent oracle for verdict's statistics engine (pkg/stats).

Writes golden files of inputs and expected outputs into pkg/stats/testdata/:

  compare.json  comparisons of every kind, fixed horizon and sequential, several
                alphas and tuning sizes, in the wire format of `verdict stats`
                ("in" is an input line, "want" its output line)
  srm.json      sample ratio mismatch, 2 to 5 arms, weights of 0 included
  srm_sequential.json
                the sequential SRM test of Lindon & Malek (2022): Dirichlet-
                multinomial Bayes factor, p = min(1, 1/BF), from
                scipy.special.loggamma
  adjust.json   Holm and Benjamini-Hochberg adjusted p-values
  power.json    sample size per arm and power reached, fixed and sequential
  dist.json     spot values of the distributions underneath

Run it with Debian's Python, which has SciPy and statsmodels:

  /usr/bin/python3 scripts/oracle/stats_oracle.py [-o pkg/stats/testdata]

It shares no code with the Go implementation: the formulas are written here
again from DESIGN.md ("Statistics") in NumPy arithmetic, and the distributions
come from SciPy (scipy.stats.t, norm, chi2, chisquare) and statsmodels
(multipletests, NormalIndPower). Where a library offers a second route to
the same number (scipy.stats.ttest_ind_from_stats for Welch's test, chi2.sf
for chisquare, statsmodels' solve_power for the sample size) the script checks
that the routes agree and stops if they do not. Every file starts with a
header naming the libraries and versions that produced it; a fixed seed makes
the output reproducible.

One deliberate detail: SciPy 1.10's t quantile (scipy.stats.t.ppf/isf, Cephes
stdtri) is accurate to only ~2e-9 relative for some degrees of freedom, while
its tail function (t.sf, Boost) is accurate to ~1e-15. The critical values are
therefore polished with Newton steps on t.sf and t.pdf before use.
"""

import argparse
import json
import math
import os
import platform
import sys

import numpy as np
import scipy
import scipy.stats as st
import statsmodels
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

SEED = 20261101
DEFAULT_ALPHA = 0.05
DEFAULT_SEQUENTIAL = True
DEFAULT_TUNING = 5000.0


def header(what):
    return {
        "oracle": "SciPy %s, statsmodels %s, NumPy %s on Python %s (%s)"
        % (scipy.__version__, statsmodels.__version__, np.__version__,
           platform.python_version(), sys.executable),
        "generator": "scripts/oracle/stats_oracle.py",
        "seed": SEED,
        "contents": what,
    }


def check(cond, msg):
    if not cond:
        sys.exit("oracle self-check failed: " + msg)


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b)) or (a == b)


# --- distributions -----------------------------------------------------------

def t_crit(alpha, df):
    """Two-sided critical value: t with P(|T| > t) = alpha."""
    q = st.t.isf(alpha / 2, df)
    for _ in range(3):
        f = st.t.sf(q, df) - alpha / 2
        if f == 0:
            break
        q += f / st.t.pdf(q, df)
    check(close(2 * st.t.sf(q, df), alpha, 1e-13), "t quantile did not converge")
    check(close(q, st.t.isf(alpha / 2, df), 1e-6), "t quantile polish moved too far")
    return float(q)


def t_p2(t, df):
    return float(2 * st.t.sf(abs(t), df))


# --- comparisons -------------------------------------------------------------

def estimate(kind, a):
    """Per-arm estimate and the variance of that estimate (DESIGN.md)."""
    n, s = float(a["n"]), float(a["sum"])
    if kind in ("mean", "count"):
        var = (a["sum_squares"] - s ** 2 / n) / (n - 1)
        return s / n, var / n
    if kind == "proportion":
        p = s / n
        return p, p * (1 - p) / n
    if kind == "ratio":
        ds = float(a["den_sum"])
        mx, my = s / n, ds / n
        vx = (a["sum_squares"] - s ** 2 / n) / (n - 1)
        vy = (a["den_sum_squares"] - ds ** 2 / n) / (n - 1)
        cov = (a["sum_products"] - s * ds / n) / (n - 1)
        v = vx / my ** 2 - 2 * cov * mx / my ** 3 + vy * mx ** 2 / my ** 4
        return mx / my, v / n
    raise ValueError(kind)


def compare(inp):
    kind = inp["kind"]
    alpha = inp.get("alpha", DEFAULT_ALPHA)
    sequential = inp.get("sequential", DEFAULT_SEQUENTIAL)
    tuning = inp.get("tuning", DEFAULT_TUNING)
    c, t = inp["control"], inp["treatment"]
    mc, vc = estimate(kind, c)
    mt, vt = estimate(kind, t)
    nc, nt = float(c["n"]), float(t["n"])
    d = mt - mc
    se = math.sqrt(vt + vc)
    rel_defined = mc != 0
    if rel_defined:
        r = (mt - mc) / abs(mc)  # GrowthBook: divided by the control mean's magnitude
        rse = math.sqrt(vt / mc ** 2 + mt ** 2 * vc / mc ** 4)
    detail = {"control_mean": mc, "control_var": vc, "treatment_mean": mt,
              "treatment_var": vt, "se": se}
    if not sequential:
        df = (vt + vc) ** 2 / (vt ** 2 / (nt - 1) + vc ** 2 / (nc - 1))
        q = t_crit(alpha, df)
        p = t_p2(d / se, df)
        if kind in ("mean", "count"):
            # Second route: SciPy's own Welch test on the same summaries.
            res = st.ttest_ind_from_stats(mt, math.sqrt(vt * nt), nt, mc, math.sqrt(vc * nc), nc,
                                          equal_var=False)
            check(close(float(res.pvalue), p, 1e-9) or p < 1e-290, "Welch p disagrees with ttest_ind_from_stats")
        hw = q * se
        rhw = q * rse if rel_defined else None
        detail["df"] = df
    else:
        N = nc + nt
        l = -2 * math.log(alpha)
        rho2 = (l + math.log(l + 1)) / tuning
        tt = N * rho2 + 1
        mult = math.sqrt(N) * math.sqrt(2 * tt * math.log(math.sqrt(tt) / alpha) / (N ** 2 * rho2))
        hw = se * mult
        rhw = rse * mult if rel_defined else None
        p = min(1.0, math.sqrt(tt) * math.exp(-rho2 * N * d ** 2 / (2 * tt * se ** 2)))
    lo, hi = d - hw, d + hw
    want = {
        "abs_effect": d,
        "abs_ci": [lo, hi],
        "rel_effect": r if rel_defined else None,
        "rel_ci": [r - rhw, r + rhw] if rel_defined else None,
        "p_value": p,
        "significant": bool(lo > 0 or hi < 0),
    }
    if rel_defined:
        detail["rel_se"] = rse
    return want, detail


def loguniform_int(rng, lo, hi):
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def arm_from_moments(kind, n, mean, sd, rng, den=None):
    """Sufficient statistics of n values with the given mean and sd."""
    a = {"n": n, "sum": n * mean}
    if kind != "proportion":
        a["sum_squares"] = (n - 1) * sd ** 2 + n * mean ** 2
    if kind == "ratio":
        my, sy, rho = den
        a["den_sum"] = n * my
        a["den_sum_squares"] = (n - 1) * sy ** 2 + n * my ** 2
        a["sum_products"] = (n - 1) * rho * sd * sy + n * mean * my
    return a


def synthetic_pair(kind, rng):
    nc = loguniform_int(rng, 2, 2_000_000)
    nt = max(2, int(nc * rng.uniform(0.5, 1.5))) if rng.random() < 0.8 else loguniform_int(rng, 2, 2_000_000)
    effect = rng.normal(0, 0.05) if rng.random() < 0.7 else rng.normal(0, 0.5)
    if kind == "proportion":
        p = math.exp(rng.uniform(math.log(0.002), math.log(0.7)))
        pt = min(0.99, max(0.0005, p * (1 + effect)))
        c = {"n": nc, "sum": int(rng.binomial(nc, p))}
        t = {"n": nt, "sum": int(rng.binomial(nt, pt))}
        return c, t
    if kind == "mean":
        mean = rng.choice([rng.uniform(0.5, 300), rng.uniform(-50, 50)])
        sd = abs(mean) * rng.uniform(0.2, 6) + rng.uniform(0.1, 1)
    elif kind == "count":
        mean = rng.uniform(0.05, 30)
        sd = math.sqrt(mean * rng.uniform(1, 4))
    else:
        mean = rng.uniform(1, 500)
        sd = mean * rng.uniform(0.3, 3)
    mt = mean * (1 + effect)
    sdt = sd * rng.uniform(0.8, 1.25)
    den_c = den_t = None
    if kind == "ratio":
        my = rng.uniform(0.5, 10)
        sy = my * rng.uniform(0.2, 1.5)
        rho = rng.uniform(-0.3, 0.9)
        den_c = (my, sy, rho)
        den_t = (my * rng.uniform(0.95, 1.05), sy * rng.uniform(0.9, 1.1), rho)
    return (arm_from_moments(kind, nc, mean, sd, rng, den_c),
            arm_from_moments(kind, nt, mt, sdt, rng, den_t))


def raw_pair(kind, rng):
    """Sufficient statistics computed from simulated per-unit data."""
    nc, nt = loguniform_int(rng, 20, 20000), loguniform_int(rng, 20, 20000)
    lift = rng.normal(0, 0.1)

    def arm(n, lift):
        if kind == "proportion":
            x = (rng.random(n) < 0.08 * (1 + lift)).astype(float)
            return {"n": n, "sum": float(x.sum())}
        if kind == "mean":  # revenue: most units buy nothing
            x = np.where(rng.random(n) < 0.1, rng.lognormal(3, 1, n) * (1 + lift), 0.0)
        elif kind == "count":
            x = rng.poisson(2.5 * (1 + lift), n).astype(float)
        else:  # page load ms per page view: y views, x total ms
            y = rng.poisson(3, n).astype(float) + 1
            x = np.array([rng.gamma(4, 250 * (1 + lift), int(k)).sum() for k in y])
            return {"n": n, "sum": float(x.sum()), "sum_squares": float((x * x).sum()),
                    "den_sum": float(y.sum()), "den_sum_squares": float((y * y).sum()),
                    "sum_products": float((x * y).sum())}
        return {"n": n, "sum": float(x.sum()), "sum_squares": float((x * x).sum())}

    return arm(nc, 0.0), arm(nt, lift)


def compare_cases(rng):
    alphas = [0.001, 0.01, 0.05, 0.1, 0.2]
    tunings = [100.0, 1000.0, 5000.0, 20000.0, 1e6]
    cases = []
    for kind in ("mean", "count", "proportion", "ratio"):
        for i in range(60):
            while True:  # errors are the Go tests' business; the oracle wants answers
                c, t = raw_pair(kind, rng) if i % 4 == 0 else synthetic_pair(kind, rng)
                if estimate(kind, c)[1] + estimate(kind, t)[1] > 0:
                    break
            inp = {"kind": kind}
            # Some lines leave options out: the defaults are part of the contract.
            if i % 10 != 7:
                inp["alpha"] = float(rng.choice(alphas))
            if i % 10 != 8:
                inp["sequential"] = bool(i % 2)
            if i % 10 != 9 and inp.get("sequential", True):
                inp["tuning"] = float(rng.choice(tunings))
            inp["control"], inp["treatment"] = c, t
            cases.append(inp)
    # Corners: identical arms, huge effects, n = 2, a control mean of 0, one
    # constant arm, a negative control mean.
    cases += [
        {"kind": "mean", "sequential": False, "control": {"n": 1000, "sum": 5000, "sum_squares": 40000},
         "treatment": {"n": 1000, "sum": 5000, "sum_squares": 40000}},
        {"kind": "mean", "sequential": True, "control": {"n": 1000, "sum": 5000, "sum_squares": 40000},
         "treatment": {"n": 1000, "sum": 5000, "sum_squares": 40000}},
        {"kind": "proportion", "alpha": 0.05, "sequential": False,
         "control": {"n": 100000, "sum": 10000}, "treatment": {"n": 100000, "sum": 13000}},
        {"kind": "proportion", "alpha": 0.05, "sequential": True,
         "control": {"n": 100000, "sum": 10000}, "treatment": {"n": 100000, "sum": 13000}},
        {"kind": "mean", "alpha": 0.05, "sequential": False,
         "control": {"n": 2, "sum": 3, "sum_squares": 5}, "treatment": {"n": 2, "sum": 7, "sum_squares": 25}},
        {"kind": "count", "alpha": 0.1, "sequential": False,
         "control": {"n": 2, "sum": 1, "sum_squares": 1}, "treatment": {"n": 3, "sum": 9, "sum_squares": 35}},
        {"kind": "mean", "alpha": 0.05, "sequential": False,
         "control": {"n": 500, "sum": 0, "sum_squares": 2000}, "treatment": {"n": 500, "sum": 150, "sum_squares": 2100}},
        {"kind": "mean", "alpha": 0.05, "sequential": True, "tuning": 1000,
         "control": {"n": 500, "sum": 0, "sum_squares": 2000}, "treatment": {"n": 500, "sum": 150, "sum_squares": 2100}},
        {"kind": "proportion", "alpha": 0.05, "sequential": False,
         "control": {"n": 3000, "sum": 0}, "treatment": {"n": 3000, "sum": 12}},
        {"kind": "mean", "alpha": 0.01, "sequential": False,
         "control": {"n": 800, "sum": -4000, "sum_squares": 60000}, "treatment": {"n": 820, "sum": -3700, "sum_squares": 52000}},
        {"kind": "ratio", "alpha": 0.05, "sequential": True, "tuning": 5000,
         "control": {"n": 4000, "sum": 4.1e6, "sum_squares": 9.3e9, "den_sum": 12000, "den_sum_squares": 52000, "sum_products": 1.55e7},
         "treatment": {"n": 4100, "sum": 3.9e6, "sum_squares": 8.1e9, "den_sum": 12400, "den_sum_squares": 53000, "sum_products": 1.48e7}},
    ]
    out = []
    for inp in cases:
        want, detail = compare(inp)
        out.append({"in": inp, "want": want, "detail": detail})
    return out


# --- sample ratio mismatch ---------------------------------------------------

def srm_cases(rng):
    weight_sets = [[0.5, 0.5], [1, 1], [50, 50], [0.1, 0.9], [1, 2], [1, 1, 1], [0.2, 0.3, 0.5],
                   [0.25, 0.25, 0.25, 0.25], [0.4, 0.1, 0.1, 0.4], [0.2, 0.2, 0.2, 0.2, 0.2],
                   [0.5, 0.5, 0], [0, 0.5, 0.5], [0.3, 0, 0.3, 0.4], [0.25, 0, 0.25, 0, 0.5], [1, 0, 2]]
    cases = []
    for i in range(90):
        w = list(weight_sets[i % len(weight_sets)])
        if i >= 2 * len(weight_sets):  # random weights, sometimes with zeros
            k = int(rng.integers(2, 6))
            w = [float(x) for x in rng.dirichlet(np.ones(k))]
            if k > 2 and rng.random() < 0.5:
                w[int(rng.integers(0, k))] = 0.0
        w = [float(x) for x in w]
        total = int(rng.choice([12, 40, 1000, 25000, 1_000_000, 30_000_000]))
        wa = np.array(w) / sum(w)
        if rng.random() < 0.35:  # a real mismatch
            wa = wa * rng.uniform(0.9, 1.1, len(wa))
            wa = wa / wa.sum()
        obs = [int(x) for x in rng.multinomial(total, wa)]
        # Arms of weight 0 may still see a few units (misconfigured clients).
        obs = [o if w[j] > 0 else int(rng.integers(0, 3)) for j, o in enumerate(obs)]
        kept = [(o, x) for o, x in zip(obs, w) if x > 0]
        if sum(o for o, _ in kept) == 0:
            continue
        ko = np.array([o for o, _ in kept], dtype=float)
        kw = np.array([x for _, x in kept], dtype=float)
        exp = kw / kw.sum() * ko.sum()
        res = st.chisquare(ko, exp)
        check(close(float(res.pvalue), float(st.chi2.sf(res.statistic, len(ko) - 1)), 1e-12),
              "chisquare disagrees with chi2.sf")
        cases.append({"in": {"kind": "srm", "observed": obs, "weights": w},
                      "want": {"p_value": float(res.pvalue)},
                      "detail": {"statistic": float(res.statistic),
                                 "enough_traffic": bool(min(ko) >= 8)}})
    return cases


def sequential_srm_cases(rng):
    """Lindon & Malek (2022), as in Optimizely's ssrm: the Bayes factor of a
    Dirichlet-multinomial (mean = the normalised weights p, concentration c)
    against the multinomial null p, on cumulative counts; p = min(1, 1/BF).
    The log Bayes factor is written twice, once as the difference of the two
    log pmfs (scipy.stats.multinomial.logpmf for the null) and once in closed
    form with scipy.special.loggamma, and the two must agree."""
    from scipy.special import loggamma

    def log_bf(x, p, c):
        a = c * p
        n = x.sum()
        if n == 0:  # no units: both likelihoods are 1 (multinomial.logpmf gives nan)
            return 0.0
        dm = (float(loggamma(a.sum())) + float(loggamma(n + 1)) - float(loggamma(n + a.sum()))
              + float(np.sum(loggamma(x + a) - loggamma(a) - loggamma(x + 1))))
        return dm - float(st.multinomial.logpmf(x, int(n), p))

    def log_bf_closed(x, p, c):
        a = c * p
        return float(loggamma(c) - loggamma(c + x.sum()) + np.sum(loggamma(a + x) - loggamma(a)) - np.sum(x * np.log(p)))

    weight_sets = [[0.5, 0.5], [1, 1], [0.1, 0.9], [1, 2], [1, 1, 1], [0.2, 0.3, 0.5],
                   [0.25, 0.25, 0.25, 0.25], [0.2, 0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 0], [0.3, 0, 0.3, 0.4]]
    cases = []
    for i in range(80):
        w = [float(x) for x in weight_sets[i % len(weight_sets)]]
        if i >= 3 * len(weight_sets):
            k = int(rng.integers(2, 6))
            w = [float(x) for x in rng.dirichlet(np.ones(k))]
        c = [10000.0, 10000.0, 1000.0, 100000.0][i % 4]
        total = int(rng.choice([0, 5, 100, 2000, 25000, 400000, 3_000_000]))
        wa = np.array(w) / sum(w)
        if rng.random() < 0.4:  # a real mismatch
            wa = wa * rng.uniform(0.95, 1.05, len(wa))
            wa = wa / wa.sum()
        obs = [int(x) for x in rng.multinomial(total, wa)]
        obs = [o if w[j] > 0 else int(rng.integers(0, 3)) for j, o in enumerate(obs)]
        kept = [(o, x) for o, x in zip(obs, w) if x > 0]
        x = np.array([o for o, _ in kept], dtype=float)
        p = np.array([v for _, v in kept], dtype=float)
        p = p / p.sum()
        lbf = log_bf(x, p, c)
        check(abs(lbf - log_bf_closed(x, p, c)) <= 1e-7 * max(1.0, abs(lbf)),
              "the two forms of the log Bayes factor disagree")
        pv = min(1.0, math.exp(-lbf)) if lbf > -700 else 1.0
        cases.append({"in": {"kind": "srm", "sequential": True, "concentration": c, "observed": obs, "weights": w},
                      "want": {"p_value": pv},
                      "detail": {"log_bayes_factor": lbf}})
    return cases


# --- multiple comparisons ------------------------------------------------------

def adjust_cases(rng):
    cases = []
    for i in range(60):
        m = int(rng.integers(1, 31))
        p = rng.beta(0.4, 1.5, m)
        if i % 5 == 1 and m > 2:  # ties
            p[1] = p[0]
            p[-1] = p[0]
        if i % 7 == 3:
            p[0] = 0.0
        if i % 7 == 4:
            p[-1] = 1.0
        p = [float(x) for x in p]
        holm = multipletests(p, method="holm")[1]
        bh = multipletests(p, method="fdr_bh")[1]
        cases.append({"p": p, "holm": [float(x) for x in holm], "bh": [float(x) for x in bh]})
    return cases


# --- power ---------------------------------------------------------------------

def boundary(alpha, sequential, tuning, N):
    if not sequential:
        return float(st.norm.isf(alpha / 2))
    l = -2 * math.log(alpha)
    rho2 = (l + math.log(l + 1)) / tuning
    t = N * rho2 + 1
    return math.sqrt(N) * math.sqrt(2 * t * math.log(math.sqrt(t) / alpha) / (N ** 2 * rho2))


def power_at(plan, nc, nt):
    d = abs(plan["mde"] * plan["mean"])
    sd = math.sqrt(plan["variance"])
    k = d / (sd * math.sqrt(1 / nc + 1 / nt))
    c = boundary(plan["alpha"], plan["sequential"], plan["tuning"], nc + nt)
    return float(st.norm.cdf(k - c) + st.norm.cdf(-k - c))


def power_cases(rng):
    from scipy.optimize import brentq
    cases = []
    baselines = [("proportion", 0.05), ("proportion", 0.3), ("mean", 10.0), ("mean", 250.0), ("ratio", 1.7)]
    for i in range(60):
        kind, mean = baselines[i % len(baselines)]
        variance = mean * (1 - mean) if kind == "proportion" else (mean * rng.uniform(0.3, 3)) ** 2
        plan = {
            "mean": mean, "variance": float(variance),
            "mde": float(rng.choice([0.01, 0.02, 0.03, 0.05, 0.1, -0.05])),
            "power": float(rng.choice([0.5, 0.8, 0.9, 0.95])),
            "alpha": float(rng.choice([0.01, 0.05, 0.1])),
            "sequential": bool(i % 2),
            "tuning": float(rng.choice([1000.0, 5000.0, 50000.0])),
        }
        f = lambda n: power_at(plan, n, n) - plan["power"]
        lo, hi = 1.0, 2.0
        while f(hi) < 0:
            lo, hi = hi, hi * 2
        n = brentq(f, lo, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps, maxiter=500)
        if not plan["sequential"]:
            es = abs(plan["mde"] * mean) / math.sqrt(variance)
            sm = NormalIndPower().solve_power(effect_size=es, alpha=plan["alpha"], power=plan["power"], ratio=1.0)
            check(close(float(sm), n, 1e-6), "sample size disagrees with statsmodels solve_power")
        nc = float(loguniform_int(rng, 10, 5_000_000))
        nt = float(max(10, int(nc * rng.uniform(0.7, 1.3))))
        pw = power_at(plan, nc, nt)
        if not plan["sequential"]:
            es = abs(plan["mde"] * mean) / math.sqrt(variance)
            sm = NormalIndPower().power(effect_size=es, nobs1=nc, alpha=plan["alpha"], ratio=nt / nc)
            check(close(float(sm), pw, 1e-12), "power disagrees with statsmodels NormalIndPower.power")
            pw = float(sm)
        cases.append({"plan": plan, "sample_size": n, "control": nc, "treatment": nt, "power_at": pw})
    return cases


# --- distributions -------------------------------------------------------------

def dist_cases():
    cases = []
    for df in [0.7, 1.0, 2.5, 7.3, 29.0, 31.0, 120.4, 2000.0, 1e5 + 0.3, 2e6 + 0.7, 3e7 + 0.1]:
        for t in [0.01, 0.5, 1.96, 3.0, 8.0, 40.0]:
            cases.append({"dist": "t_tail2", "df": df, "x": t, "want": t_p2(t, df)})
        for a in [1e-9, 0.001, 0.01, 0.05, 0.2, 0.7]:
            cases.append({"dist": "t_quantile2", "df": df, "x": a, "want": t_crit(a, df)})
    for k in [1.0, 2.0, 3.0, 4.0, 10.0, 99.0]:
        for x in [0.01, 0.7, 3.5, 12.0, 80.0, 600.0]:
            cases.append({"dist": "chi2_tail", "df": k, "x": x, "want": float(st.chi2.sf(x, k))})
    for p in [1e-12, 1e-5, 0.005, 0.025, 0.1, 0.2, 0.5, 0.8, 0.975]:
        cases.append({"dist": "normal_upper", "df": 0, "x": p, "want": float(st.norm.isf(p))})
    return cases


def write(path, head, cases):
    with open(path, "w") as f:
        f.write('{"header": ' + json.dumps(head) + ',\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, allow_nan=False) for c in cases))
        f.write("\n ]}\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=os.path.join(here, "..", "..", "pkg", "stats", "testdata"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    files = {
        "compare.json": ("two-arm comparisons as `verdict stats` lines: in, want (the output line), detail",
                         compare_cases(rng)),
        "srm.json": ("sample ratio mismatch: scipy.stats.chisquare on the arms of weight > 0",
                     srm_cases(rng)),
        "adjust.json": ("statsmodels multipletests holm and fdr_bh", adjust_cases(rng)),
        "power.json": ("units per arm for a relative MDE (brentq on the power formula, fixed checked "
                       "against statsmodels NormalIndPower.solve_power) and power reached "
                       "(statsmodels NormalIndPower.power for fixed horizon)", power_cases(rng)),
        "dist.json": ("scipy.stats t (two-sided tail, polished two-sided quantile), chi2.sf, norm.isf",
                      dist_cases()),
        "srm_sequential.json": ("sequential SRM (Lindon & Malek 2022): Dirichlet-multinomial Bayes factor "
                                "from scipy.special.loggamma, checked against scipy.stats.multinomial.logpmf; "
                                "p = min(1, 1/BF)", sequential_srm_cases(np.random.default_rng(SEED + 1))),
    }
    for name, (what, cases) in files.items():
        write(os.path.join(args.out, name), header(what), cases)
        print("wrote %s: %d cases" % (os.path.normpath(os.path.join(args.out, name)), len(cases)))


if __name__ == "__main__":
    main()
