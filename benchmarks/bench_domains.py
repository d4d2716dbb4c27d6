"""Benchmark of the agent on case files of other domains: generated multi-category shopping panels.

    python benchmarks/bench_domains.py                        # one panel, units 1 + Poisson(pack)
    python benchmarks/bench_domains.py --seeds 0 1 --units dozens wide
    python benchmarks/bench_domains.py --brands 15 25 --households 300   # 15-25 candidates a case
    python benchmarks/bench_domains.py --conjoint 2000 --seeds 0 1        # attributes only, no history

Ta Feng is where the agent's choices were made; these panels check that they travel (issue 14: "keep
it general"). Each panel: 12 categories whose purchase rates differ 30-fold (the rare ones are the
*sparse* cases: fewer than 100 purchases in the fit period), 3-6 brands each with their own appeal, a
price response per household shared by every category (what a sparse category can borrow), display
and feature ads, loyalty to the last brand bought in the category. Weeks 0-3 are the fit period
(history and popularity only), cases of weeks 4-11 train, of weeks 12-17 are scored. Units: `pack`
1 + Poisson(0.25 x pack size); `dozens` twelve times that; `wide` 1 + Poisson(60 x that) (units in the
hundreds). `--conjoint N`: conjoint-like files instead, N respondents each choosing once among 2-4
profiles (brand, price, size, an eco flag) by a logit, no history: the attributes are all there is.

Each panel goes through the documented commands only (`malles eval fit`, `eval run -b agent --model`,
`eval run -b baseline:logit|lgbm --quantity regressor`, `eval report --reference agent`), so the
case files are what a user would write. Prints each panel's table, the fit's time and the agent's
lead over each baseline with paired bootstrap intervals; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

START = dt.date(2001, 1, 1)
RATES = (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.06, 0.04, 0.03, 0.02, 0.015)  # purchases per household-week
UNITS = {
    "pack": lambda rng, pack: 1 + int(rng.poisson(0.25 * pack)),
    "dozens": lambda rng, pack: 12 * (1 + int(rng.poisson(0.25 * pack))),
    "wide": lambda rng, pack: 1 + int(rng.poisson(60 * (1 + int(rng.poisson(0.25 * pack))))),
}


def panel(seed: int, households: int, units: str, brands: tuple[int, int] = (3, 6)) -> dict[str, list[dict]]:
    """Train and test cases (JSON-ready dicts in the case format) of one generated panel."""
    rng = np.random.default_rng(seed)
    cats = []
    for c, rate in enumerate(RATES):
        names = [f"c{c}b{j}" for j in range(int(rng.integers(brands[0], brands[1] + 1)))]
        cats.append(
            {
                "name": f"cat{c}",
                "rate": rate,
                "brands": names,
                "appeal": {b: float(rng.normal(0, 0.7)) for b in names},
                "regular": {b: round(float(rng.uniform(2, 9)), 2) for b in names},
                "pack": {b: float(rng.choice([1, 2, 3])) for b in names},
            }
        )
    beta = rng.normal(2.5, 0.8, households).clip(0.3)  # each household's price response, in every category
    history: list[list[tuple]] = [[] for _ in range(households)]  # (day, category, brand, units, price)
    fit_counts: dict[str, dict[str, int]] = {}
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for week in range(18):
        for h in range(households):
            for cat in cats:
                if rng.random() >= cat["rate"]:
                    continue
                case, bought = purchase(rng, cat, h, week, beta[h], history[h], fit_counts, units)
                if case is not None:
                    out["train" if week < 12 else "test"].append(case)
                if week < 4:
                    counts = fit_counts.setdefault(cat["name"], {})
                    counts[bought[2]] = counts.get(bought[2], 0) + 1
                history[h].append(bought)
    return out


def purchase(rng, cat, h, week, beta, past, fit_counts, units) -> tuple[dict | None, tuple]:
    """One household's purchase in one category: the case (None in the fit period or without a past) and the line."""
    day = START + dt.timedelta(days=7 * week + h % 7)
    names = cat["brands"]
    display = {b: int(rng.random() < 0.2) for b in names}
    feature = {b: int(rng.random() < 0.15) for b in names}
    price = {b: round(cat["regular"][b] * (0.75 if rng.random() < 0.25 else 1.0), 2) for b in names}
    last = next((x for x in reversed(past) if x[1] == cat["name"]), None)
    utility = np.array(
        [
            cat["appeal"][b] - beta * math.log(price[b]) + 1.2 * display[b] + 0.8 * feature[b]
            + (1.0 if last and last[2] == b else 0.0)
            for b in names
        ]
    )  # fmt: skip
    p = np.exp(utility - utility.max())
    choice = names[int(rng.choice(len(names), p=p / p.sum()))]
    bought = (day, cat["name"], choice, UNITS[units](rng, cat["pack"][choice]), price[choice])
    if week < 4 or not past:
        return None, bought
    counts = fit_counts.get(cat["name"], {})
    total = sum(counts.values())
    own: dict[str, dict] = {}
    for d, name, b, q, paid in past:
        if name == cat["name"]:
            row = own.setdefault(
                b, {"times_bought": 0, "total_quantity": 0, "last_date": None, "mean_price_paid": paid}
            )
            row["times_bought"] += 1
            row["total_quantity"] += q
            row["last_date"] = d.isoformat()
    days = sorted({d for d, *_ in past}, reverse=True)
    baskets = [
        {
            "date": d.isoformat(),
            "items": [
                {"product_id": b, "subclass": name, "quantity": q, "unit_price": paid}
                for dd, name, b, q, paid in past
                if dd == d
            ],
        }
        for d in days[:3]
    ]
    case = {
        "case_id": f"h{h}-w{week}-{cat['name']}",
        "date": day.isoformat(),
        "customer": {"customer_id": f"h{h}", "n_baskets": len(days)},
        "subclass": cat["name"],
        "candidates": [
            {
                "product_id": b,
                "subclass": cat["name"],
                "price": price[b],
                "regular_price": cat["regular"][b],
                "popularity": (counts.get(b, 0) + 0.5) / (total + 0.5 * len(names)),
                "label": chr(ord("A") + i),
                "attributes": {"display": display[b], "feature": feature[b], "pack": cat["pack"][b]},
            }
            for i, b in enumerate(names)
        ],
        "recent_baskets": baskets,
        "own_history": own,
        "truth_product_id": choice,
        "truth_quantity": bought[3],
        "sparse": total < 100,
        "subclass_fit_transactions": total,
    }
    return case, bought


def malles(*args: str) -> float:
    """Run one `malles` command (its output to stderr kept quiet); its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "malles_graph.cli", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"malles {' '.join(args)} failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return time.perf_counter() - start


CONJOINT_BRANDS = {"acme": 0.5, "bolt": 0.0, "crux": -0.3, "dyna": 0.8, "echo": -0.6}


def conjoint(seed: int, respondents: int) -> dict[str, list[dict]]:
    """A conjoint-like file: each respondent chooses once among 2-4 profiles (brand, price, size, an eco
    flag) by a logit, all on one date, with no history: nothing but the attributes to go on. Three quarters
    train, the rest are scored."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for r in range(respondents):
        brands = rng.choice(sorted(CONJOINT_BRANDS), int(rng.integers(2, 5)), replace=False)
        profiles = [
            {
                "product_id": f"{b}-{j}",
                "price": round(float(rng.uniform(1, 10)), 2),
                "attributes": {"brand": str(b), "size_ml": float(rng.choice([250, 500, 1000])), "eco": int(rng.random() < 0.3)},
            }
            for j, b in enumerate(brands)
        ]  # fmt: skip
        utility = np.array(
            [CONJOINT_BRANDS[p["attributes"]["brand"]] - 0.35 * p["price"] + 0.001 * p["attributes"]["size_ml"]
             + 0.4 * p["attributes"]["eco"] for p in profiles]
        )  # fmt: skip
        p = np.exp(utility - utility.max())
        choice = profiles[int(rng.choice(len(profiles), p=p / p.sum()))]
        out["train" if r < 3 * respondents // 4 else "test"].append(
            {
                "case_id": f"r{r}",
                "date": "2020-03-01",
                "customer": {"customer_id": f"r{r}"},
                "subclass": "detergent",
                "candidates": profiles,
                "truth_product_id": choice["product_id"],
                "truth_quantity": 1,
            }
        )
    return out


def bench(cases: dict[str, list[dict]], title: str) -> None:
    with tempfile.TemporaryDirectory(prefix="malles-domains-") as tmp:
        run_in(cases, title, Path(tmp))


def run_in(cases: dict[str, list[dict]], title: str, folder: Path) -> None:
    for name, rows in cases.items():
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    train, test, agent = str(folder / "train.jsonl"), str(folder / "test.jsonl"), str(folder / "agent.joblib")
    sizes = f"{len(cases['train'])} training cases, {len(cases['test'])} scored"
    sparse = sum(r.get("sparse", False) for r in cases["test"])
    print(f"\n## {title}: {sizes} ({sparse} sparse)")
    fit = malles("eval", "fit", "--cases", train, "--out", agent, "--seed", "0")
    run = malles("eval", "run", "--cases", test, "-b", "agent", "--model", agent, "-o", str(folder / "agent.jsonl"))
    for name in ("logit", "lgbm"):
        out = str(folder / f"{name}.jsonl")
        malles(
            "eval",
            "run",
            "--cases",
            test,
            "-b",
            f"baseline:{name}",
            "--train",
            train,
            "--quantity",
            "regressor",
            "-o",
            out,
        )
    runs = [str(folder / f"{m}.jsonl") for m in ("agent", "logit", "lgbm")]
    malles("eval", "report", *runs, "--cases", test, "--reference", "agent", "-o", str(folder / "report"))
    print(f"agent fit {fit:.1f} s, run {run:.1f} s (wall, process start included)\n")
    report = (folder / "report" / "report.md").read_text(encoding="utf-8")
    print(report.split("![")[0].split("\n", 3)[3].strip())  # the tables, without the title and the plots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="panel seeds")
    parser.add_argument("--households", type=int, default=400)
    parser.add_argument("--units", nargs="+", choices=sorted(UNITS), default=["pack"])
    parser.add_argument("--brands", type=int, nargs=2, default=[3, 6], metavar=("FEWEST", "MOST"), help="per category")
    parser.add_argument(
        "--conjoint", type=int, default=0, metavar="N", help="instead: conjoint-like files of N respondents"
    )
    args = parser.parse_args()
    if not 2 <= args.brands[0] <= args.brands[1] <= 26:  # labels A..Z
        parser.error(f"--brands {args.brands[0]} {args.brands[1]}: need 2 <= FEWEST <= MOST <= 26")
    for seed in args.seeds:
        if args.conjoint:
            bench(conjoint(seed, args.conjoint), f"conjoint seed {seed}")
            continue
        for units in args.units:
            bench(
                panel(seed, args.households, units, (args.brands[0], args.brands[1])),
                f"panel seed {seed}, units {units}",
            )


if __name__ == "__main__":
    main()
