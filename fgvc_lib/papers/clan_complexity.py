"""CLAN's Table 5 counted at the paper's size: parameters and multiply-adds at 448 px, 200 classes.

Huang, Wang & Yang, arXiv 2210.08784, Table 5 (VGG-16, 2-scale and 3-scale CLAN), as the notebook
shows it. The counts come from :func:`fgvc_lib.papers.clan.table5_operator_counts` (full-width models on
the meta device, in every profile: they depend on neither the data nor the profile, so unlike the
accuracies they are comparable with the paper's), which the claims read too. Besides the paper's rows,
the operator breakdown counts two other ways of building the 3-scale model, to explain the gaps
(:data:`fgvc_lib.papers.clan.EXTRA_ROWS`): eq. 2 evaluated literally and conv5_3 instead of pool5 as
VGG-16's top-level map. :func:`table5_increments` sets the multiply-adds each CLAN adds to VGG-16
beside the paper's, with and without the attention products (``bmm``), for both top-level maps.
"""
from __future__ import annotations

from typing import Tuple

import pandas as pd

from . import clan as paper
from .clan import EXTRA_ROWS, LITERAL_ROW, table5_counts  # noqa: F401  (also read from here by the tests)


def table5(backbone: str, profile: str) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, breakdown)``: Table 5 in the results format (metrics ``params_m`` and ``macs_g``) and
    the multiply-adds per operator of every model, the literal 3-scale evaluation included."""
    from ..reporting import result_rows

    printed = paper.STUDY.printed["table5"]
    entries, breakdown = [], []
    for row, totals, by_op in paper.table5_operator_counts(backbone):
        if row not in EXTRA_ROWS:
            entries += [{"row": row, "metric": m, "values": [totals[m]], "paper": printed.get(row, {}).get(m)}
                        for m in paper.COUNTS]
        breakdown.append({"model": row, "params (M)": totals["params_m"], "MACs (G)": totals["macs_g"],
                          **{f"{op} (G)": v for op, v in by_op.items()}})
    table = result_rows(entries, table="table5", dataset="cub (200 classes, 448 px)",
                        backbone="vgg16" if backbone == "vgg16" else f"vgg16+{backbone}", profile=profile)
    return table, pd.DataFrame(breakdown).set_index("model").fillna(0.0).round(3)


def table5_view(df: pd.DataFrame) -> pd.DataFrame:
    """Table 5 side by side: paper and ours for parameters and MACs, with the relative gap in percent."""
    out = []
    for row, group in df.groupby("row", sort=False):
        values = {m: (r["paper"], r["reproduced"]) for m, r in zip(group["metric"], group.to_dict("records"))}
        line = {"row": row}
        for metric, label in (("params_m", "params (M)"), ("macs_g", "MACs (G)")):
            printed, ours = values[metric]
            line[f"paper {label}"] = printed
            line[f"ours {label}"] = round(ours, 2)
            line[f"gap {metric[:-2]} %"] = round(100.0 * (ours / printed - 1), 2) if pd.notna(printed) else float("nan")
        out.append(line)
    return pd.DataFrame(out).set_index("row")


def table5_increments() -> pd.DataFrame:
    """Multiply-adds (G) each VGG-16 CLAN adds to VGG-16: the paper's (from Table 5) beside ours, with
    pool5 (our reading) and conv5_3 as the top-level map, counting every operator or leaving out the
    attention products (``bmm``); and the parameters added (M), the same for both top-level maps."""
    rows = {row: (totals, by_op) for row, totals, by_op in paper.table5_operator_counts("vgg16")}
    base_totals, base_ops = rows["VGG-16"]
    printed = paper.STUDY.printed["table5"]

    def added(row: str, with_bmm: bool) -> float:
        totals, by_op = rows[row]
        value = totals["macs_g"] - base_totals["macs_g"]
        return value if with_bmm else value - (by_op.get("bmm", 0.0) - base_ops.get("bmm", 0.0))

    out = []
    for row in ("2-scale CLAN", "3-scale CLAN"):
        out.append({
            "row": row,
            "paper: MACs (G)": round(printed[row]["macs_g"] - printed["VGG-16"]["macs_g"], 2),
            "ours, pool5 top: MACs (G)": added(row, True),
            "ours, pool5 top: MACs without bmm (G)": added(row, False),
            "ours, conv5_3 top: MACs (G)": added(paper.CONV5_3_ROWS[row], True),
            "ours, conv5_3 top: MACs without bmm (G)": added(paper.CONV5_3_ROWS[row], False),
            "paper: params (M)": round(printed[row]["params_m"] - printed["VGG-16"]["params_m"], 2),
            "ours: params (M)": rows[row][0]["params_m"] - base_totals["params_m"],
        })
    table = pd.DataFrame(out).set_index("row").round(3).T
    table.index.name = "added to VGG-16"
    table.columns.name = None
    return table
