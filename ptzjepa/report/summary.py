"""summary.md: what the store holds, a per-cycle table, each plot with a line on what it shows,
and the plots that were skipped with the reason."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import numpy as np

from ptzjepa.report.cells import PAN_CELL_DEG, TILT_CELL_DEG, cells_per_cycle
from ptzjepa.report.gather import LossPoint, RunData


def summary_markdown(data: RunData, made: list[tuple[str, str, str]], skipped: list[tuple[str, str]],
                     notes: list[str]) -> str:
    """`made` is (file, title, what it shows); `skipped` is (title, why)."""
    stages = Counter(p.stage for p in data.poses)
    extra = _stored_columns(data)
    lines = [
        "# ptzjepa run report", "",
        f"Data: `{data.url}` · made {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", "",
        f"{len(data.poses)} frame records over {len(data.cycles)} cycle(s) "
        f"({', '.join(f'{stage} {n}' for stage, n in sorted(stages.items()))}); "
        f"{len(data.rewards)} moves with a stored reward, {len(data.embedding_ids)} stored embeddings.", "",
        "## Per cycle", "",
        f"| cycle | frames | moves with reward | mean reward | pan/tilt cells ({PAN_CELL_DEG:g}°×{TILT_CELL_DEG:g}°) "
        "| world-model loss (last epoch) | agent loss (last epoch) |" + "".join(f" {h} |" for h in extra),
        "|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(extra),
    ]
    lines += _cycle_rows(data, extra)
    lines += ["", "## Plots", ""]
    for file, title, what in made:
        lines += [f"### {title}", "", what, "", f"![{title}]({file})", ""]
    if skipped or notes:
        lines += ["## Skipped and notes", ""]
        lines += [f"- **{title}** skipped: {why}" for title, why in skipped]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip("\n") + "\n"


def _stored_columns(data: RunData) -> dict[str, dict[int, str]]:
    """Columns for the metrics the run stored: header -> cycle -> text; none when it stored none."""
    columns: dict[str, dict[int, str]] = {}
    stored = data.metrics
    one_step = {c: f"{v['one_step']:.4g}" for c, v in stored.heldout.items() if "one_step" in v}
    if one_step:
        columns["held-out one-step error"] = one_step
    navigated = {c: f"{v['navigate']['fraction']:.1%}" for c, v in stored.coverage.items()
                 if "fraction" in v.get("navigate", {})}
    if navigated:
        columns["navigate coverage (stored)"] = navigated
    choices: dict[int, list[float]] = defaultdict(list)
    for cycle, value in stored.choices:
        choices[cycle].append(value)
    if choices:
        columns["choice percentile (mean)"] = {c: f"{np.mean(v):.1f} % of {len(v)}" for c, v in choices.items()}
    return columns


def _cycle_rows(data: RunData, extra: dict[str, dict[int, str]]) -> list[str]:
    cells = cells_per_cycle(data.poses)
    frames = Counter(p.cycle for p in data.poses)
    rewards: dict[int, list[float]] = defaultdict(list)
    for pose in data.poses:
        if pose.id in data.rewards:
            rewards[pose.cycle].append(data.rewards[pose.id])
    wm, agent = _last_epoch_means(data.world_model_losses), _last_epoch_means(data.agent_losses)
    rows = []
    for cycle in data.cycles:
        visited = ", ".join(f"{stage} {counts[cycle]}" for stage, counts in cells.items() if cycle in counts)
        mean = f"{np.mean(rewards[cycle]):.4g}" if rewards[cycle] else "–"
        rows.append(f"| {cycle} | {frames[cycle]} | {len(rewards[cycle])} | {mean} | {visited} "
                    f"| {_fmt(wm.get(cycle))} | {_fmt(agent.get(cycle))} |"
                    + "".join(f" {_fmt(values.get(cycle))} |" for values in extra.values()))
    return rows


def _last_epoch_means(points: list[LossPoint]) -> dict[int, str]:
    """cycle -> the mean loss of each model's last epoch in that cycle, as text."""
    epochs: dict[tuple[int, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        epochs[(p.cycle, p.model)][p.epoch].append(p.loss)
    out: dict[int, list[str]] = defaultdict(list)
    for (cycle, model), by_epoch in sorted(epochs.items()):
        last = max(by_epoch)
        out[cycle].append(f"{model} {np.mean(by_epoch[last]):.4g}")
    return {cycle: ", ".join(texts) for cycle, texts in out.items()}


def _fmt(text: str | None) -> str:
    return text or "–"
