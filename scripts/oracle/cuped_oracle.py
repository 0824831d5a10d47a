#!/usr/bin/python3
"""Independent oracle for CUPED in verdict's statistics engine (pkg/stats).

Writes pkg/stats/testdata/cuped.json: comparisons with a pre-exposure
covariate, each as the sufficient statistics verdict receives from ClickHouse
("in") and the expected results ("want").

Each case draws per-unit data with NumPy (outcome correlated with the
covariate, some units with a covariate of 0), then computes, without any of
verdict's formulas for the adjustment itself:

  theta, abs_effect  statsmodels OLS of the outcome on an intercept, the
                     treatment indicator and the centred covariate, as in Deng,
                     Xu, Kohavi and Walker (2013): the covariate's coefficient
                     is theta, the indicator's the adjusted effect
  se                 statsmodels OLS of the adjusted outcome y - theta*(x0 -
                     mean x0) on the indicator with HC2 standard errors (for a
                     binary regressor, s_t^2/n_t + s_c^2/n_c, checked)
  variance_reduction 1 - se^2 / se_raw^2, se_raw from the same HC2 regression of
                     the unadjusted outcome
  abs_ci, p_value    the fixed-horizon Welch test (SciPy's t, Welch df from the
                     arms' adjusted variances) or DESIGN.md's confidence sequence
  rel_effect         the arms' adjusted means, (m_t - m_c)/|m_c|

Ratio metrics are linearised per unit first, by the delta method with each
arm's own ratios: u = (x - R*y)/mean(y) for the outcome and v = (x0 - P*y0)/
mean(y0) for the covariate; theta is then OLS's coefficient of v in u ~ 1 + T
+ v, the effect (R_t - R_c) - theta*(P_t - P_c), and se the HC2 regression of
u - theta*v on the indicator.

Run it with Debian's Python (SciPy and statsmodels):

  /usr/bin/python3 scripts/oracle/cuped_oracle.py [-o pkg/stats/testdata]
"""

import argparse
import json
import math
import os
import platform

import numpy as np
import scipy
import scipy.stats as st
import statsmodels
import statsmodels.api as sm

SEED = 20261202


def t_crit(alpha, df):
    # SciPy's t.isf is accurate to ~2e-9; polish it on t.sf (accurate to
    # ~1e-15), as stats_oracle.py does.
    q = st.t.isf(alpha / 2, df)
    for _ in range(3):
        q += (st.t.sf(q, df) - alpha / 2) / st.t.pdf(q, df)
    return q


def draw(kind, n, rng, lift, rho):
    """Per-unit outcome (x, y) and covariate (x0, y0) of one arm."""
    z0 = rng.normal(size=n)
    z1 = rho * z0 + math.sqrt(1 - rho * rho) * rng.normal(size=n)
    active = rng.random(n) < 0.7  # 30% of units had nothing before exposure
    if kind == "proportion":
        x0 = ((z0 > 0.3) & active).astype(float)
        x = (z1 + lift > 0.4).astype(float)
        return x, None, x0, None
    if kind == "count":
        x0 = np.where(active, rng.poisson(np.exp(0.5 + 0.6 * z0)), 0).astype(float)
        x = rng.poisson(np.exp(0.5 + lift + 0.6 * z1)).astype(float)
        return x, None, x0, None
    if kind == "mean":
        x0 = np.where(active, np.exp(3 + 0.5 * z0), 0.0)
        x = np.exp(3 + lift + 0.5 * z1)
        return x, None, x0, None
    # ratio: e.g. clicks per session, numerator and denominator per unit
    y0 = np.where(active, 1 + rng.poisson(np.exp(0.8 + 0.3 * z0)), 1).astype(float)
    x0 = np.where(active, rng.poisson(y0 * np.exp(0.2 + 0.5 * z0)), 0).astype(float)
    y = (1 + rng.poisson(np.exp(0.8 + 0.3 * z1))).astype(float)
    x = rng.poisson(y * np.exp(0.2 + lift + 0.5 * z1)).astype(float)
    return x, y, x0, y0


def sums(kind, x, y, x0, y0):
    arm = {"n": float(len(x)), "sum": float(x.sum()), "sum_squares": float((x * x).sum())}
    pre = {"sum": float(x0.sum()), "sum_squares": float((x0 * x0).sum()), "cross_sum": float((x * x0).sum())}
    if kind == "ratio":
        arm.update(den_sum=float(y.sum()), den_sum_squares=float((y * y).sum()), sum_products=float((x * y).sum()))
        pre.update(den_sum=float(y0.sum()), den_sum_squares=float((y0 * y0).sum()), sum_products=float((x0 * y0).sum()),
                   cross_den=float((x * y0).sum()), den_cross_sum=float((y * x0).sum()), den_cross_den=float((y * y0).sum()))
    return arm, pre


def hc2_se(outcome, treat):
    fit = sm.OLS(outcome, sm.add_constant(treat)).fit(cov_type="HC2")
    return float(fit.bse[1])


def oracle(kind, c, t, alpha, sequential, tuning):
    (xc, yc, x0c, y0c), (xt, yt, x0t, y0t) = c, t
    nc, nt = len(xc), len(xt)
    treat = np.concatenate([np.zeros(nc), np.ones(nt)])
    if kind == "ratio":
        rc, rt = xc.sum() / yc.sum(), xt.sum() / yt.sum()
        pc, pt = x0c.sum() / y0c.sum(), x0t.sum() / y0t.sum()
        u = np.concatenate([(xc - rc * yc) / yc.mean(), (xt - rt * yt) / yt.mean()])
        v = np.concatenate([(x0c - pc * y0c) / y0c.mean(), (x0t - pt * y0t) / y0t.mean()])
        fit = sm.OLS(u, np.column_stack([np.ones(nc + nt), treat, v])).fit()
        theta = float(fit.params[2])
        pooled = (x0c.sum() + x0t.sum()) / (y0c.sum() + y0t.sum())
        mc, mt = rc - theta * (pc - pooled), rt - theta * (pt - pooled)
        d = mt - mc
        outcome, adjusted = u, u - theta * v
    else:
        x = np.concatenate([xc, xt])
        x0 = np.concatenate([x0c, x0t])
        centred = x0 - x0.mean()
        fit = sm.OLS(x, np.column_stack([np.ones(nc + nt), treat, centred])).fit()
        theta, d = float(fit.params[2]), float(fit.params[1])
        mc = xc.mean() - theta * (x0c.mean() - x0.mean())
        mt = xt.mean() - theta * (x0t.mean() - x0.mean())
        assert abs((mt - mc) - d) <= 1e-9 * max(1, abs(d)), "OLS effect and adjusted means disagree"
        outcome, adjusted = x, x - theta * centred
    se = hc2_se(adjusted, treat)
    vc = float(np.var(adjusted[:nc], ddof=1) / nc)
    vt = float(np.var(adjusted[nc:], ddof=1) / nt)
    assert abs(se * se - (vc + vt)) <= 1e-9 * se * se, "HC2 is not the unpooled variance"
    se_raw = hc2_se(outcome, treat)
    reduction = 1 - se * se / (se_raw * se_raw)
    rel = (mt - mc) / abs(mc)  # GrowthBook: divided by the control mean's magnitude
    rel_se = math.sqrt(vt / mc**2 + mt * mt * vc / mc**4)
    if sequential:
        N = nc + nt
        l = -2 * math.log(alpha)
        rho2 = (l + math.log(l + 1)) / tuning
        tt = N * rho2 + 1
        half = math.sqrt(N) * math.sqrt(2 * tt * math.log(math.sqrt(tt) / alpha) / (N * N * rho2))
        p = min(1.0, math.sqrt(tt) * math.exp(-rho2 * N * (d / se) ** 2 / (2 * tt)))
    else:
        df = (vc + vt) ** 2 / (vc * vc / (nc - 1) + vt * vt / (nt - 1))
        half = t_crit(alpha, df)
        p = float(2 * st.t.sf(abs(d) / se, df))
    return {
        "theta": theta, "variance_reduction": reduction,
        "control_mean": float(mc), "treatment_mean": float(mt),
        "abs_effect": float(d), "se": se, "abs_ci": [float(d - half * se), float(d + half * se)],
        "rel_effect": float(rel), "rel_ci": [float(rel - half * rel_se), float(rel + half * rel_se)],
        "p_value": p,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", default=os.path.join(os.path.dirname(__file__), "..", "..", "pkg", "stats", "testdata"))
    out = ap.parse_args().o
    rng = np.random.default_rng(SEED)
    cases = []
    for kind in ["mean", "count", "proportion", "ratio"]:
        for i in range(12):
            nc = int(rng.integers(50, 4000))
            nt = int(nc * rng.uniform(0.6, 1.4))
            rho = [0.0, 0.3, 0.6, 0.9][i % 4]
            lift = [0.0, 0.05, -0.03][i % 3]
            alpha = [0.05, 0.01, 0.1][i % 3]
            sequential = i % 2 == 0
            tuning = [5000.0, 1000.0, 20000.0][i % 3]
            c = draw(kind, nc, rng, 0.0, rho)
            t = draw(kind, nt, rng, lift, rho)
            control, control_pre = sums(kind, *c)
            treatment, treatment_pre = sums(kind, *t)
            cases.append({
                "in": {"kind": kind, "alpha": alpha, "sequential": sequential, "tuning": tuning,
                       "control": control, "treatment": treatment,
                       "control_pre": control_pre, "treatment_pre": treatment_pre},
                "want": oracle(kind, c, t, alpha, sequential, tuning),
            })
    doc = {
        "header": {
            "oracle": "statsmodels %s OLS (HC2), SciPy %s, NumPy %s on Python %s" % (
                statsmodels.__version__, scipy.__version__, np.__version__, platform.python_version()),
            "generator": "scripts/oracle/cuped_oracle.py",
            "seed": SEED,
            "contents": "CUPED comparisons: sufficient statistics in, statsmodels' adjusted effect, theta, HC2 se and variance reduction out",
        },
        "cases": cases,
    }
    with open(os.path.join(out, "cuped.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote %d cases to %s" % (len(cases), os.path.join(out, "cuped.json")))


if __name__ == "__main__":
    main()
