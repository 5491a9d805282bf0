"""The simulation layer of the local Labs server: scenarios, persona, scorers, safety gate.

The protocol layer uses only the names exported here (see the simulator contract).
"""

from labs_env.server.simulation.loader import ScenarioError
from labs_env.server.simulation.persona import PersonaReply, PersonaSession
from labs_env.server.simulation.simulator import (
    DEFAULT_WEIGHTS,
    SCORING_VERSION,
    ScenarioSpec,
    ScoreResult,
    Simulator,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "SCORING_VERSION",
    "PersonaReply",
    "PersonaSession",
    "ScenarioError",
    "ScenarioSpec",
    "ScoreResult",
    "Simulator",
]
