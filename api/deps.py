"""What routes depend on, as typed `Annotated` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.event_log.event_log_writer import EventLogWriter
from api.middleware.prometheus_metrics import Metrics
from api.serving.click_counts import ClickCounts
from api.serving.draft_encoder import DraftEncoder
from api.serving.experiment_arms import ExperimentArms
from api.serving.experiment_figures import ExperimentFigureCounts
from api.serving.feedback_tokens import FeedbackSigner
from api.serving.index_holder import IndexHolder
from api.serving.popular_articles import PopularArticles
from api.serving.single_flight import SingleFlight
from api.stores.event_store import EventStore
from api.stores.result_cache import ResultCache
from index.state.session_store import SessionStore
from recommender.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    """Everything one app instance built in its lifespan."""

    settings: Settings
    holder: IndexHolder
    cache: ResultCache
    drafts: DraftEncoder
    flights: SingleFlight
    metrics: Metrics
    events: EventStore
    sessions: SessionStore
    feedback: FeedbackSigner
    event_log: EventLogWriter
    popular: PopularArticles
    experiments: ExperimentArms
    experiment_figures: ExperimentFigureCounts
    clicks: ClickCounts


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
