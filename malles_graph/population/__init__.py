"""Population and mean-field maths: archetypes, aggregation, the retail environment, reporters.

Pure core code (numpy, polars, scikit-learn, pydantic); the LangGraph supervisor that loops
these pieces lives in ``graphs/population/`` (the runner in ``graphs/run/``).
"""

from malles_graph.population.archetypes import Archetype, Clustering, cluster_customers, customer_features
from malles_graph.population.environment import AgentSpec, AgentTask, Environment, EnvironmentStep
from malles_graph.population.meanfield import Aggregate, WeightedOutcome, aggregate, damped_update, total_variation
from malles_graph.population.reporters import DataCollector, RoundReport

__all__ = [
    "AgentSpec",
    "AgentTask",
    "Aggregate",
    "Archetype",
    "Clustering",
    "DataCollector",
    "Environment",
    "EnvironmentStep",
    "RoundReport",
    "WeightedOutcome",
    "aggregate",
    "cluster_customers",
    "customer_features",
    "damped_update",
    "total_variation",
]
