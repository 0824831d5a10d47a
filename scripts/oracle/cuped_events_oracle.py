#!/usr/bin/python3
"""Raw events with a correlated pre-period, and what CUPED must make of them.

Writes services/verdict/testdata/cuped/:

  events.ndjson.gz  exposures and track events of one experiment, 2,400 units:
                    purchases, sessions and clicks in the 16 days before each
                    unit's first exposure (those older than the 14-day lookback
                    must not count) and in the day after it, correlated through
                    a per-unit activity level; the treatment lifts activity; a
                    few events are sent twice and some units are exposed twice
  expected.json     the experiment's definitions and, per metric, the readout
                    numbers computed here from the raw events alone

Times are relative to "base" (2026-12-01T00:00:00Z); the test shifts every
timestamp by the same amount so that the events are recent, which changes no
per-unit value.

The expected numbers come from the per-unit values computed here from the
events (the metric definitions of DESIGN.md, the attribution window and the
CUPED lookback), then statsmodels: OLS of the outcome on an intercept, the
treatment indicator and the centred covariate (theta, and the adjusted
effect); HC2 standard errors of the adjusted outcome on the indicator; the
confidence sequence of DESIGN.md for the interval and p-value; and 1 - se^2 /
se_raw^2 for the variance reduction. The ratio metric is linearised per unit
by the delta method first, as in cuped_oracle.py.

  /usr/bin/python3 scripts/oracle/cuped_events_oracle.py
"""

import datetime as dt
import gzip
import io
import json
import math
import os
import platform

import numpy as np
import scipy
import statsmodels
import statsmodels.api as sm

SEED = 20261203
BASE = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
DAY = 86_400_000
LOOKBACK = 14 * DAY
WINDOW = 7 * DAY
UNITS = 1200  # per arm
ALPHA, TUNING = 0.05, 5000.0
KEY = "cuped-checkout"

METRICS = [
    {"key": "conversion", "kind": "proportion", "event": "purchase", "direction": "increase"},
    {"key": "revenue", "kind": "mean", "event": "purchase", "aggregate": "sum", "direction": "increase"},
    {"key": "sessions", "kind": "count", "event": "session_start", "aggregate": "count", "direction": "increase"},
    {"key": "clicks_per_session", "kind": "ratio", "direction": "increase",
     "numerator": {"event": "click", "aggregate": "count"}, "denominator": {"event": "session_start", "aggregate": "count"}},
]


def iso(ms):
    return (BASE + dt.timedelta(milliseconds=int(ms))).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate(rng):
    events, n = [], 0

    def eid(p):
        nonlocal n
        n += 1
        return "%s-%06d" % (p, n)

    for arm, variant, lift in [(0, "control", 0.0), (1, "one-page", 0.10)]:
        for i in range(UNITS):
            unit = "u-%s-%04d" % (variant, i)
            activity = rng.normal()
            first = int(rng.integers(-3 * DAY, -1 * DAY))
            events.append({"type": "exposure", "event_id": eid("x"), "ts": iso(first), "unit_id": unit,
                           "experiment": KEY, "variant": variant})
            if rng.random() < 0.2:  # exposed again, later: the first counts
                events.append({"type": "exposure", "event_id": eid("x"), "ts": iso(first + int(rng.integers(1, DAY))),
                               "unit_id": unit, "experiment": KEY, "variant": variant})
            for period, lo, hi, boost in [("pre", -16 * DAY, -1, 0.0), ("post", 0, 20 * 3_600_000, lift)]:
                if period == "pre" and rng.random() < 0.25:
                    continue  # new users: nothing before exposure
                rate = math.exp(0.2 + 0.6 * activity + boost)
                span = (hi - lo) / DAY
                sessions = rng.poisson(rate * (0.25 if period == "pre" else 1.5) * span)
                for _ in range(sessions):
                    at = first + int(rng.integers(lo, hi))
                    events.append({"type": "track", "event_id": eid("s"), "ts": iso(at), "unit_id": unit, "event": "session_start"})
                    for _ in range(rng.poisson(1.5 * math.exp(0.3 * activity + boost))):
                        events.append({"type": "track", "event_id": eid("c"), "ts": iso(at + int(rng.integers(0, 60_000))),
                                       "unit_id": unit, "event": "click"})
                    if rng.random() < 0.15 * math.exp(0.4 * activity + boost):
                        value = round(float(np.exp(3 + 0.4 * activity + 0.3 * rng.normal())), 2)
                        events.append({"type": "track", "event_id": eid("p"), "ts": iso(at + int(rng.integers(0, 600_000))),
                                       "unit_id": unit, "event": "purchase", "value": value})
    dups = [e for e in events if rng.random() < 0.02]
    events += dups
    order = rng.permutation(len(events))
    return [events[i] for i in order]


def parse(ts):
    return int((dt.datetime.fromisoformat(ts.replace("Z", "+00:00")) - BASE) / dt.timedelta(milliseconds=1))


def per_unit(events):
    """Per unit: its variant and, per metric, (x, y) after and (x0, y0) before the first exposure."""
    seen, first, variant = set(), {}, {}
    distinct = []
    for e in events:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            distinct.append(e)
    for e in distinct:
        if e["type"] == "exposure":
            t = parse(e["ts"])
            u = e["unit_id"]
            if u not in first or t < first[u]:
                first[u] = t
            variant[u] = e["variant"]
    post = {u: {} for u in first}
    pre = {u: {} for u in first}
    for e in distinct:
        if e["type"] != "track" or e["unit_id"] not in first:
            continue
        u, t = e["unit_id"], parse(e["ts"])
        f = first[u]
        into = post[u] if f <= t < f + WINDOW else pre[u] if f - LOOKBACK <= t < f else None
        if into is None:
            continue
        c, s = into.get(e["event"], (0, 0.0))
        into[e["event"]] = (c + 1, s + e.get("value", 1.0))

    def value(agg, m):
        def part(p):
            c, s = agg.get(p["event"], (0, 0.0))
            return float(c) if p.get("aggregate") == "count" else s
        if m["kind"] == "proportion":
            return (1.0 if agg.get(m["event"], (0, 0))[0] > 0 else 0.0), 0.0
        if m["kind"] == "count":
            return float(agg.get(m["event"], (0, 0))[0]), 0.0
        if m["kind"] == "mean":
            return part({"event": m["event"], "aggregate": m.get("aggregate")}), 0.0
        return part(m["numerator"]), part(m["denominator"])

    units = sorted(first)
    return units, variant, {m["key"]: [(value(post[u], m), value(pre[u], m)) for u in units] for m in METRICS}


def compare(kind, rows, treat):
    x = np.array([r[0][0] for r in rows]); y = np.array([r[0][1] for r in rows])
    x0 = np.array([r[1][0] for r in rows]); y0 = np.array([r[1][1] for r in rows])
    c, t = treat == 0, treat == 1
    nc, nt = int(c.sum()), int(t.sum())
    if kind == "ratio":
        rc, rt = x[c].sum() / y[c].sum(), x[t].sum() / y[t].sum()
        pc, pt = x0[c].sum() / y0[c].sum(), x0[t].sum() / y0[t].sum()
        u = np.where(c, (x - rc * y) / y[c].mean(), (x - rt * y) / y[t].mean())
        v = np.where(c, (x0 - pc * y0) / y0[c].mean(), (x0 - pt * y0) / y0[t].mean())
        fit = sm.OLS(u, np.column_stack([np.ones(len(u)), treat, v])).fit()
        theta = float(fit.params[2])
        pooled = x0.sum() / y0.sum()
        mc, mt = rc - theta * (pc - pooled), rt - theta * (pt - pooled)
        observed = (rc, rt)
        outcome, adjusted = u, u - theta * v
    else:
        centred = x0 - x0.mean()
        fit = sm.OLS(x, np.column_stack([np.ones(len(x)), treat, centred])).fit()
        theta = float(fit.params[2])
        mc = x[c].mean() - theta * (x0[c].mean() - x0.mean())
        mt = x[t].mean() - theta * (x0[t].mean() - x0.mean())
        assert abs((mt - mc) - fit.params[1]) <= 1e-9 * max(1.0, abs(mt - mc))
        observed = (x[c].mean(), x[t].mean())
        outcome, adjusted = x, x - theta * centred
    hc2 = lambda z: float(sm.OLS(z, sm.add_constant(treat)).fit(cov_type="HC2").bse[1])
    se, se_raw = hc2(adjusted), hc2(outcome)
    vc = float(np.var(adjusted[c], ddof=1) / nc)
    vt = float(np.var(adjusted[t], ddof=1) / nt)
    d = mt - mc
    N = nc + nt
    l = -2 * math.log(ALPHA)
    rho2 = (l + math.log(l + 1)) / TUNING
    tt = N * rho2 + 1
    half = math.sqrt(N) * math.sqrt(2 * tt * math.log(math.sqrt(tt) / ALPHA) / (N * N * rho2))
    rel = (mt - mc) / abs(mc)  # GrowthBook: divided by the control mean's magnitude
    rel_se = math.sqrt(vt / mc**2 + mt * mt * vc / mc**4)
    return {
        "control": {"n": nc, "mean": float(observed[0])}, "treatment": {"n": nt, "mean": float(observed[1])},
        "abs_effect": float(d), "ci": [float(d - half * se), float(d + half * se)],
        "rel_effect": float(rel), "rel_ci": [float(rel - half * rel_se), float(rel + half * rel_se)],
        "p_value": min(1.0, math.sqrt(tt) * math.exp(-rho2 * N * (d / se) ** 2 / (2 * tt))),
        "cuped": {"lookback": "14d", "applied": True, "theta": theta, "variance_reduction": 1 - se * se / (se_raw * se_raw)},
    }


def main():
    out = os.path.join(os.path.dirname(__file__), "..", "..", "services", "verdict", "testdata", "cuped")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    events = generate(rng)
    units, variant, values = per_unit(events)
    treat = np.array([1.0 if variant[u] == "one-page" else 0.0 for u in units])
    metrics = {m["key"]: compare(m["kind"], values[m["key"]], treat) for m in METRICS}
    definitions = {
        "metrics": METRICS,
        "experiments": [{
            "key": KEY, "name": "One-page checkout, with CUPED", "owners": ["cuped@example.com"],
            "variants": [{"key": "control", "weight": 0.5}, {"key": "one-page", "weight": 0.5}],
            "control": "control", "primary": ["conversion"], "secondary": ["revenue", "sessions", "clicks_per_session"],
            "mde": 0.05, "alpha": ALPHA, "power": 0.8, "sequential": True, "tuning": TUNING,
            "attribution_window": "7d", "start": iso(-4 * DAY),
        }],
    }
    # mtime 0: the same events give the same file.
    with gzip.GzipFile(os.path.join(out, "events.ndjson.gz"), "wb", mtime=0) as z, io.TextIOWrapper(z, encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")
    doc = {
        "header": {
            "oracle": "statsmodels %s OLS (HC2), SciPy %s, NumPy %s on Python %s, per-unit values from the raw events" % (
                statsmodels.__version__, scipy.__version__, np.__version__, platform.python_version()),
            "generator": "scripts/oracle/cuped_events_oracle.py",
            "seed": SEED,
        },
        "base": iso(0), "experiment": KEY, "units": len(units), "events": len(events),
        "definitions": definitions, "metrics": metrics,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote %d events of %d units to %s" % (len(events), len(units), out))
    for k, m in metrics.items():
        print("  %-20s effect %+.5f  ci [%+.5f, %+.5f]  variance reduction %.3f" % (k, m["abs_effect"], m["ci"][0], m["ci"][1], m["cuped"]["variance_reduction"]))


if __name__ == "__main__":
    main()
