"""`recommender evaluate-policy`: off-policy estimates of the current ranking's and candidate
rankings' clicks per impression from the impression log (docs/learning.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from api.cli.cli_toolkit import DataDirOption, JsonOption, fail, print_json, run_command
from api.cli.log_days import SinceOption, UntilOption, day_range
from api.serving.ranking_overrides import InvalidOverride, flat_name, with_overrides
from recommender.settings import Settings

if TYPE_CHECKING:
    from api.event_log.policy_evaluation import Evaluation
    from recommender.evaluation.off_policy import Estimate

#: The least share of a ranking's (impression, slot) choices the log must show, by default.
MIN_SUPPORT = 0.95
#: Where one NAME=VALUE of a candidate ends: spaces or commas before the next NAME=.
_NEXT_SETTING = re.compile(r"[\s,]+(?=[A-Za-z_][A-Za-z0-9_]*=)")


def candidate_settings(current: Settings, text: str) -> Settings:
    """`current` with the ranking settings of `text` (`NAME=VALUE ...`, by flat or environment
    name; a value is JSON where it parses as JSON) changed; exit 2 for anything else."""
    changes: dict[str, Any] = {}
    for assignment in _NEXT_SETTING.split(text.strip()):
        name, equals, value = assignment.partition("=")
        if not equals or not flat_name(name):
            raise fail(f"--candidate {text!r}: write each setting as NAME=VALUE", 2)
        try:
            changes[name] = orjson.loads(value)
        except orjson.JSONDecodeError:
            changes[name] = value
    try:
        return with_overrides(current, changes)
    except InvalidOverride as exc:
        raise fail(f"--candidate {text!r}: {exc}", 2) from None


def evaluate_policy(
    since: SinceOption,
    until: UntilOption = None,
    candidate: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SETTINGS",
            help="A candidate ranking: ranking settings changed from the current ones, as "
            "NAME=VALUE pairs separated by spaces or commas (e.g. 'diversity=0.3 "
            "lexical_weight=0.8', or 'click_weight=0.5': readers' clicks as counted from the "
            "log's days before --since). Repeatable.",
        ),
    ] = None,
    placement: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Only the boxes of this placement (default: all)."),
    ] = None,
    min_support: Annotated[
        float,
        typer.Option(
            metavar="SHARE",
            min=0.0,
            max=1.0,
            help="Least share of a ranking's (impression, slot) choices the log must show; "
            "below it the command refuses (exit 65).",
        ),
    ] = MIN_SUPPORT,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Estimate, from the impression log alone, the clicks per impression the current ranking
    and each candidate would have had: IPS, self-normalised IPS and doubly robust, with 95%
    confidence intervals and the effective sample size (docs/learning.md)."""
    from api.event_log.event_log_factory import settings_event_log
    from api.event_log.policy_evaluation import (
        clicks_before,
        evaluate_policies,
        logged_boxes,
        reranked,
        served_ranking,
    )
    from index.serving.version_loader import load_recommender

    first, last = day_range(since, until)
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    candidates = {text: candidate_settings(settings, text) for text in candidate or []}

    def run() -> Evaluation:
        served, warning = load_recommender(settings.index)
        if warning:
            typer.echo(f"recommender: warning: {warning}", err=True)
        with settings_event_log(settings) as log:
            boxes = logged_boxes(log.read(first, last), placement)
            clicks = clicks_before(log, settings, first)
            served = served.with_clicks(clicks)
        rankings = {"current": served_ranking(served)} | {
            text: served_ranking(reranked(served, settings, changed))
            for text, changed in candidates.items()
        }
        return evaluate_policies(boxes, rankings, min_support, clicks.ratio)

    evaluation = run_command(run)
    period = {"since": str(first), "until": str(last), "placement": placement}
    if as_json:
        print_json(period | evaluation.as_json())
        return
    typer.echo(format_policy_evaluation(period, evaluation))


def format_policy_evaluation(period: dict[str, Any], evaluation: Evaluation) -> str:
    """The estimates as an aligned text table, one line per ranking."""

    def interval(e: Estimate) -> str:
        return f"{e.value:.4f} [{e.low:.4f}, {e.high:.4f}]"

    header = ["ranking", "support", "IPS [95% CI]", "SNIPS [95% CI]", "DR [95% CI]", "ESS"]
    rows = [
        [
            p.name,
            f"{p.support.share:.1%}",
            interval(p.estimates.ips),
            interval(p.estimates.snips),
            interval(p.estimates.dr),
            f"{p.estimates.effective_sample_size:,.0f}",
        ]
        for p in evaluation.policies
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        f"impression log {period['since']}..{period['until']}, "
        f"placement {period['placement'] or 'all'}: {evaluation.impressions:,} impressions "
        f"({evaluation.skipped:,} left out: source no longer served), {evaluation.clicks:,} "
        f"clicks, observed {interval(evaluation.observed)} clicks per impression",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)
